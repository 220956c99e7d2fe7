package runtime

import "os"

func osMkdirTemp() (string, error) { return os.MkdirTemp("", "mmrun-test-") }
