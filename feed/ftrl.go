package feed

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/partyline/partyline"
)

// ModelOptions are the hyperparameters of the ranking model, an online
// logistic regression trained with FTRL-Proximal over hashed features.
type ModelOptions struct {
	// Bits is the log2 of the number of weights features hash into. Zero
	// means 20 (about a million weights, 16 MiB of state).
	Bits int
	// Alpha and Beta set the per-coordinate learning rate
	// alpha / (beta + sqrt(sum of squared gradients)). Zero means 0.1 and 1.
	Alpha, Beta float64
	// L1 and L2 are the regularization strengths. Zero means 0.5 and 1; a
	// negative value means none.
	L1, L2 float64
}

func (o ModelOptions) withDefaults() (ModelOptions, error) {
	if o.Bits == 0 {
		o.Bits = 20
	}
	if o.Bits < 4 || o.Bits > 26 {
		return o, fmt.Errorf("feed: model bits %d outside [4, 26]: %w", o.Bits, partyline.ErrInvalid)
	}
	def := func(v *float64, d float64) {
		switch {
		case *v == 0:
			*v = d
		case *v < 0:
			*v = 0
		}
	}
	def(&o.Alpha, 0.1)
	def(&o.Beta, 1)
	def(&o.L1, 0.5)
	def(&o.L2, 1)
	if o.Alpha == 0 {
		return o, fmt.Errorf("feed: model alpha must be positive: %w", partyline.ErrInvalid)
	}
	return o, nil
}

// model is FTRL-Proximal logistic regression (McMahan et al., "Ad Click
// Prediction: a View from the Trenches"). Weights are not stored: each is
// derived lazily from its z and n when a feature is seen. It is not safe
// for concurrent use; Service guards it with a lock.
type model struct {
	opts ModelOptions
	mask uint64
	z, n []float64
}

func newModel(opts ModelOptions) (*model, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	size := 1 << opts.Bits
	return &model{opts: opts, mask: uint64(size - 1), z: make([]float64, size), n: make([]float64, size)}, nil
}

// weight is the FTRL-Proximal closed form of coordinate i's weight.
func (m *model) weight(i uint64) float64 {
	z := m.z[i]
	if math.Abs(z) <= m.opts.L1 {
		return 0
	}
	sign := 1.0
	if z < 0 {
		sign = -1
	}
	return -(z - sign*m.opts.L1) / ((m.opts.Beta+math.Sqrt(m.n[i]))/m.opts.Alpha + m.opts.L2)
}

// predict returns the probability of engagement for the hashed features
// (each with value 1).
func (m *model) predict(features []uint64) float64 {
	var s float64
	for _, f := range features {
		s += m.weight(f & m.mask)
	}
	return sigmoid(s)
}

// update takes one gradient step toward label y in [0, 1] and returns the
// prediction made before the step.
func (m *model) update(features []uint64, y float64) float64 {
	p := m.predict(features)
	g := p - y
	for _, f := range features {
		i := f & m.mask
		w := m.weight(i)
		sigma := (math.Sqrt(m.n[i]+g*g) - math.Sqrt(m.n[i])) / m.opts.Alpha
		m.z[i] += g - sigma*w
		m.n[i] += g * g
	}
	return p
}

func sigmoid(x float64) float64 {
	x = max(-35, min(35, x))
	return 1 / (1 + math.Exp(-x))
}

// The saved form of a model: a gzip stream of a header and the used
// coordinates only, so a model that has seen little is small.
const (
	modelMagic   = "PLFTRL"
	modelVersion = 1
)

// MarshalBinary encodes the model's state.
func (m *model) MarshalBinary() ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	w := func(v any) { _ = binary.Write(zw, binary.LittleEndian, v) }
	if _, err := zw.Write([]byte(modelMagic)); err != nil {
		return nil, err
	}
	w(uint8(modelVersion))
	w(uint8(m.opts.Bits))
	var used uint32
	for _, n := range m.n {
		if n != 0 {
			used++
		}
	}
	w(used)
	for i, n := range m.n {
		if n != 0 {
			w(uint32(i))
			w(m.z[i])
			w(n)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// UnmarshalBinary replaces the model's state with a saved one. The saved
// model must have the same number of bits; its learning rates and
// regularization are the receiver's.
func (m *model) UnmarshalBinary(b []byte) error {
	bad := func(why string) error {
		return fmt.Errorf("feed: saved model: %s: %w", why, partyline.ErrInvalid)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return bad(err.Error())
	}
	defer zr.Close()
	r := io.LimitReader(zr, int64(len(modelMagic)+6+int(m.mask+1)*20))
	magic := make([]byte, len(modelMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != modelMagic {
		return bad("not a saved model")
	}
	var (
		version, bits uint8
		used          uint32
	)
	for _, v := range []any{&version, &bits, &used} {
		if err := binary.Read(r, binary.LittleEndian, v); err != nil {
			return bad(err.Error())
		}
	}
	if version != modelVersion {
		return bad(fmt.Sprintf("version %d, want %d", version, modelVersion))
	}
	if int(bits) != m.opts.Bits {
		return bad(fmt.Sprintf("%d bits, want %d", bits, m.opts.Bits))
	}
	if uint64(used) > m.mask+1 {
		return bad("more coordinates than weights")
	}
	z, n := make([]float64, len(m.z)), make([]float64, len(m.n))
	for range used {
		var (
			i      uint32
			zi, ni float64
		)
		for _, v := range []any{&i, &zi, &ni} {
			if err := binary.Read(r, binary.LittleEndian, v); err != nil {
				if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				return bad(err.Error())
			}
		}
		if uint64(i) > m.mask || ni < 0 || math.IsNaN(zi) || math.IsNaN(ni) || math.IsInf(zi, 0) || math.IsInf(ni, 0) {
			return bad("corrupt coordinate")
		}
		z[i], n[i] = zi, ni
	}
	m.z, m.n = z, n
	return nil
}
