package runtime

import (
	"bytes"
	"fmt"
	"math"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/memmamba/memmamba/ops"
)

// StateVersion is the version of the saved-state blob. Load refuses blobs
// of another major version.
const StateVersion = 1

// savedState is the msgpack form of a session's state. Keys and values of a
// pool are what SPEC.md defines (summary, score, position); the attention
// keys and values are recomputed on load.
type savedState struct {
	Magic   string       `msgpack:"magic"`
	Version int          `msgpack:"version"`
	ModelID string       `msgpack:"model_id"`
	Pos     int          `msgpack:"pos"`
	Layers  []savedLayer `msgpack:"layers"`
}

type savedLayer struct {
	Conv  []float32   `msgpack:"conv"`
	SSM   []float32   `msgpack:"ssm"`
	PrevM []float32   `msgpack:"prev_m"`
	Pool  []savedNote `msgpack:"pool,omitempty"`
}

type savedNote struct {
	Pos     int       `msgpack:"pos"`
	Score   float32   `msgpack:"score"`
	Summary []float32 `msgpack:"summary"`
}

const stateMagic = "memmamba-state"

// Save serialises the session's state (a versioned msgpack blob) so that a
// conversation can be stopped, moved to another process and continued with
// bit-identical results.
func (s *Session) Save() ([]byte, error) {
	st := savedState{Magic: stateMagic, Version: StateVersion, ModelID: s.m.ID, Pos: s.pos}
	for _, ls := range s.layers {
		sl := savedLayer{Conv: ls.conv, SSM: ls.ssm, PrevM: ls.prevM}
		if p := ls.pool; p != nil {
			for i := 0; i < p.n; i++ {
				sl.Pool = append(sl.Pool, savedNote{Pos: p.pos[i], Score: p.score[i], Summary: p.summ[i*p.S : (i+1)*p.S]})
			}
		}
		st.Layers = append(st.Layers, sl)
	}
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	if err := enc.Encode(&st); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Load replaces the session's state with a blob from Save. The blob must
// come from the same model (same weights); anything else is an error and
// leaves the session unchanged.
func (s *Session) Load(blob []byte) error {
	var st savedState
	if err := msgpack.Unmarshal(blob, &st); err != nil {
		return fmt.Errorf("state: not a saved session state: %w", err)
	}
	if st.Magic != stateMagic {
		return fmt.Errorf("state: not a saved session state")
	}
	if st.Version != StateVersion {
		return fmt.Errorf("state: version %d, this build reads version %d", st.Version, StateVersion)
	}
	if st.ModelID != s.m.ID {
		return fmt.Errorf("state: saved from another model (id %s, this model is %s)", st.ModelID, s.m.ID)
	}
	c := s.m.Config
	if st.Pos < 0 || len(st.Layers) != c.NumLayers {
		return fmt.Errorf("state: position %d with %d layers, the model has %d", st.Pos, len(st.Layers), c.NumLayers)
	}
	n := s.m.NewSession()
	for l, sl := range st.Layers {
		ls := &n.layers[l]
		if len(sl.Conv) != len(ls.conv) || len(sl.SSM) != len(ls.ssm) || len(sl.PrevM) != len(ls.prevM) {
			return fmt.Errorf("state: layer %d has the wrong sizes for this model", l)
		}
		copy(ls.conv, sl.Conv)
		copy(ls.ssm, sl.SSM)
		copy(ls.prevM, sl.PrevM)
		p := ls.pool
		if p == nil {
			if len(sl.Pool) != 0 {
				return fmt.Errorf("state: layer %d has a Note Block pool, the model has none", l)
			}
			continue
		}
		if len(sl.Pool) > p.cap {
			return fmt.Errorf("state: layer %d pool holds %d notes, the model's pools hold %d", l, len(sl.Pool), p.cap)
		}
		nw := s.m.layers[l].note
		reader := s.m.reader[l]
		for i, e := range sl.Pool {
			if len(e.Summary) != p.S || e.Pos < 0 || e.Pos >= st.Pos || math.IsNaN(float64(e.Score)) {
				return fmt.Errorf("state: layer %d pool entry %d is malformed", l, i)
			}
			p.pos[i], p.score[i] = e.Pos, e.Score
			copy(p.summ[i*p.S:], e.Summary)
			ops.MatVec(p.tokK[i*p.A:(i+1)*p.A], nw.tok.k, e.Summary)
			ops.MatVec(p.tokV[i*p.A:(i+1)*p.A], nw.tok.v, e.Summary)
			if reader >= 0 {
				lay := s.m.layers[reader].note.lay
				ops.MatVec(p.layK[i*p.A:(i+1)*p.A], lay.k, e.Summary)
				ops.MatVec(p.layV[i*p.A:(i+1)*p.A], lay.v, e.Summary)
			}
		}
		p.n = len(sl.Pool)
	}
	s.pos = st.Pos
	s.layers = n.layers
	return nil
}
