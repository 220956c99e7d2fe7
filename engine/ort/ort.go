//go:build cgo

package ort

import (
	"errors"
	"fmt"
	"sync"

	onnxruntime "github.com/yalue/onnxruntime_go"
)

// Available reports whether this build can load ONNX Runtime.
const Available = true

var (
	initMu   sync.Mutex
	initPath string
)

// Init loads the library at libPath (see FindLibrary) and creates the
// process's one ONNX Runtime environment. Calling it again with the same
// path does nothing; with another path it is an error, since a process can
// hold only one environment.
func Init(libPath string) error {
	initMu.Lock()
	defer initMu.Unlock()
	if initPath != "" {
		if libPath != initPath {
			return fmt.Errorf("onnxruntime: already initialised from %s, cannot switch to %s", initPath, libPath)
		}
		return nil
	}
	if libPath == "" {
		return errors.New("onnxruntime: empty library path")
	}
	onnxruntime.SetSharedLibraryPath(libPath)
	if err := onnxruntime.InitializeEnvironment(onnxruntime.WithLogLevelError()); err != nil {
		return fmt.Errorf("onnxruntime: load %s: %w (onnxruntime_go v1.27 needs ONNX Runtime 1.24 or newer, C API 24; `%s` installs one)", libPath, err, InstallCommand)
	}
	initPath = libPath
	return nil
}

// Version is the loaded library's version string ("1.30.0").
func Version() (string, error) {
	if !onnxruntime.IsInitialized() {
		return "", errors.New("onnxruntime: not initialised (call Init)")
	}
	return onnxruntime.GetVersion(), nil
}

// Session is one loaded graph with fixed input and output names. A Session
// may be run from one goroutine at a time.
type Session struct {
	s       *onnxruntime.DynamicAdvancedSession
	inputs  []string
	outputs []string
}

func sessionOptions(opts Options) (*onnxruntime.SessionOptions, error) {
	so, err := onnxruntime.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("onnxruntime: session options: %w", err)
	}
	fail := func(what string, err error) (*onnxruntime.SessionOptions, error) {
		so.Destroy()
		return nil, fmt.Errorf("onnxruntime: session option %s: %w", what, err)
	}
	if opts.IntraOpThreads < 0 {
		return fail("intra-op threads", fmt.Errorf("%d is negative", opts.IntraOpThreads))
	}
	if opts.IntraOpThreads > 0 {
		if err := so.SetIntraOpNumThreads(opts.IntraOpThreads); err != nil {
			return fail("intra-op threads", err)
		}
	}
	if err := so.SetInterOpNumThreads(1); err != nil {
		return fail("inter-op threads", err)
	}
	entries := [][2]string{
		{"session.disable_prepacking", boolEntry(opts.DisablePrepacking)},
		{"session.intra_op.allow_spinning", boolEntry(opts.AllowSpinning)},
	}
	if opts.ExternalDataDir != "" {
		entries = append(entries, [2]string{"session.model_external_initializers_file_folder_path", opts.ExternalDataDir})
	}
	for k, v := range opts.Config {
		entries = append(entries, [2]string{k, v})
	}
	for _, e := range entries {
		if err := so.AddSessionConfigEntry(e[0], e[1]); err != nil {
			return fail(e[0], err)
		}
	}
	return so, nil
}

func boolEntry(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// NewSession creates a session from ONNX model bytes. inputs and outputs
// name the graph's inputs and outputs in the order Run takes and returns
// them.
func NewSession(model []byte, inputs, outputs []string, opts Options) (*Session, error) {
	return newSession(func(so *onnxruntime.SessionOptions) (*onnxruntime.DynamicAdvancedSession, error) {
		if len(model) == 0 {
			return nil, errors.New("empty model")
		}
		return onnxruntime.NewDynamicAdvancedSessionWithONNXData(model, inputs, outputs, so)
	}, inputs, outputs, opts, "model bytes")
}

// NewSessionFromFile creates a session from an .onnx file; external-data
// locations are relative to its folder.
func NewSessionFromFile(path string, inputs, outputs []string, opts Options) (*Session, error) {
	return newSession(func(so *onnxruntime.SessionOptions) (*onnxruntime.DynamicAdvancedSession, error) {
		return onnxruntime.NewDynamicAdvancedSession(path, inputs, outputs, so)
	}, inputs, outputs, opts, path)
}

func newSession(create func(*onnxruntime.SessionOptions) (*onnxruntime.DynamicAdvancedSession, error),
	inputs, outputs []string, opts Options, what string) (*Session, error) {
	if !onnxruntime.IsInitialized() {
		return nil, errors.New("onnxruntime: not initialised (call Init)")
	}
	if len(inputs) == 0 || len(outputs) == 0 {
		return nil, fmt.Errorf("onnxruntime: session from %s: needs at least one input and one output name", what)
	}
	so, err := sessionOptions(opts)
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	s, err := create(so)
	if err != nil {
		return nil, fmt.Errorf("onnxruntime: session from %s: %w", what, err)
	}
	return &Session{s: s, inputs: append([]string(nil), inputs...), outputs: append([]string(nil), outputs...)}, nil
}

// wrap makes ONNX Runtime tensors over the Go slices (no copy); the caller
// must keep the slices alive and unchanged until the run ends.
func wrap(kind string, names []string, ts []Tensor) ([]onnxruntime.Value, func(), error) {
	vals := make([]onnxruntime.Value, len(ts))
	free := func() {
		for _, v := range vals {
			if v != nil {
				v.Destroy()
			}
		}
	}
	for i, t := range ts {
		if err := t.check(); err != nil {
			free()
			return nil, nil, fmt.Errorf("onnxruntime: %s %q: %w", kind, names[i], err)
		}
		v, err := onnxruntime.NewTensor(onnxruntime.NewShape(t.Shape...), t.Data)
		if err != nil {
			free()
			return nil, nil, fmt.Errorf("onnxruntime: %s %q: %w", kind, names[i], err)
		}
		vals[i] = v
	}
	return vals, free, nil
}

// Run runs the graph on inputs (in the session's input order) and returns
// freshly allocated outputs (in its output order).
func (s *Session) Run(inputs ...Tensor) ([]Tensor, error) {
	if len(inputs) != len(s.inputs) {
		return nil, fmt.Errorf("onnxruntime: %d inputs, the session takes %d (%q)", len(inputs), len(s.inputs), s.inputs)
	}
	in, free, err := wrap("input", s.inputs, inputs)
	if err != nil {
		return nil, err
	}
	defer free()
	outs := make([]onnxruntime.Value, len(s.outputs))
	defer func() {
		for _, v := range outs {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	if err := s.s.Run(in, outs); err != nil {
		return nil, fmt.Errorf("onnxruntime: run: %w", err)
	}
	res := make([]Tensor, len(outs))
	for i, v := range outs {
		ft, ok := v.(*onnxruntime.Tensor[float32])
		if !ok {
			return nil, fmt.Errorf("onnxruntime: output %q is %T, want a float32 tensor", s.outputs[i], v)
		}
		res[i] = Tensor{Shape: append([]int64(nil), ft.GetShape()...), Data: append([]float32(nil), ft.GetData()...)}
	}
	return res, nil
}

// RunInto runs the graph writing into outputs, whose shapes must be those
// the graph produces: no allocation for the results.
func (s *Session) RunInto(inputs, outputs []Tensor) error {
	if len(inputs) != len(s.inputs) || len(outputs) != len(s.outputs) {
		return fmt.Errorf("onnxruntime: %d inputs and %d outputs, the session takes %d and %d", len(inputs), len(outputs), len(s.inputs), len(s.outputs))
	}
	in, freeIn, err := wrap("input", s.inputs, inputs)
	if err != nil {
		return err
	}
	defer freeIn()
	out, freeOut, err := wrap("output", s.outputs, outputs)
	if err != nil {
		return err
	}
	defer freeOut()
	if err := s.s.Run(in, out); err != nil {
		return fmt.Errorf("onnxruntime: run: %w", err)
	}
	return nil
}

// Close releases the session.
func (s *Session) Close() error {
	if s == nil || s.s == nil {
		return nil
	}
	err := s.s.Destroy()
	s.s = nil
	return err
}
