package weights

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/nn"
	"github.com/l2g/l2g/internal/torch"
)

// MXNet's NDArray list format (mx.nd.save, src/ndarray/ndarray.cc): a header
// (uint64 0x112, uint64 reserved), the arrays as a dmlc vector (uint64 count,
// then each NDArray::Save), and the names as a vector of strings (uint64
// count, each uint64 length + bytes). Checkpoints name arrays "arg:…" and
// "aux:…" (parameters and auxiliary states such as BN moving statistics).
const (
	mxListMagic = 0x112
	mxV1Magic   = 0xF993FAC8 // int64 shape dims
	mxV2Magic   = 0xF993FAC9 // + storage type
	mxV3Magic   = 0xF993FACA // + NumPy shape semantics
)

// mxDType maps mshadow type flags to the binding's dtypes.
func mxDType(flag int32) (torch.DType, bool) {
	switch flag {
	case 0:
		return torch.Float32, true
	case 1:
		return torch.Float64, true
	case 2:
		return torch.Float16, true
	case 3:
		return torch.Uint8, true
	case 4:
		return torch.Int32, true
	case 6:
		return torch.Int64, true
	case 7:
		return torch.Bool, true
	case 12:
		return torch.BFloat16, true
	}
	return 0, false
}

type mxReader struct {
	r    *bufio.Reader
	left int64 // bytes left in the file, to reject impossible sizes
}

func (m *mxReader) read(p []byte) error {
	if int64(len(p)) > m.left {
		return io.ErrUnexpectedEOF
	}
	_, err := io.ReadFull(m.r, p)
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	m.left -= int64(len(p))
	return err
}

func (m *mxReader) u32() (uint32, error) {
	var b [4]byte
	err := m.read(b[:])
	return binary.LittleEndian.Uint32(b[:]), err
}

func (m *mxReader) u64() (uint64, error) {
	var b [8]byte
	err := m.read(b[:])
	return binary.LittleEndian.Uint64(b[:]), err
}

// shape reads a TShape: int32 ndim then int64 dims (legacy: the ndim was
// already read as the "magic", and dims are uint32).
func (m *mxReader) shape(legacyNDim int64) ([]int64, bool, error) {
	var nd int64
	if legacyNDim >= 0 {
		nd = legacyNDim
	} else {
		v, err := m.u32()
		if err != nil {
			return nil, false, err
		}
		nd = int64(int32(v))
	}
	if nd < 0 {
		return nil, true, nil // unknown shape (V3): a none array
	}
	if nd > 32 {
		return nil, false, fmt.Errorf("%d dimensions", nd)
	}
	sh := make([]int64, nd)
	for i := range sh {
		if legacyNDim >= 0 {
			v, err := m.u32()
			if err != nil {
				return nil, false, err
			}
			sh[i] = int64(v)
		} else {
			v, err := m.u64()
			if err != nil {
				return nil, false, err
			}
			sh[i] = int64(v)
		}
		if sh[i] < 0 {
			return nil, false, fmt.Errorf("shape %v", sh)
		}
	}
	return sh, false, nil
}

func (m *mxReader) ndarray() (nn.HostTensor, error) {
	magic, err := m.u32()
	if err != nil {
		return nn.HostTensor{}, err
	}
	legacyNDim := int64(-1)
	switch magic {
	case mxV2Magic, mxV3Magic:
		st, err := m.u32()
		if err != nil {
			return nn.HostTensor{}, err
		}
		if st != 0 {
			return nn.HostTensor{}, fmt.Errorf("sparse storage type %d is not supported", int32(st))
		}
	case mxV1Magic:
	default:
		legacyNDim = int64(magic) // pre-V1 arrays start with their ndim
	}
	sh, none, err := m.shape(legacyNDim)
	if err != nil {
		return nn.HostTensor{}, err
	}
	// Before V3 an empty shape means "no array"; V3 uses ndim −1 for that.
	if none || (len(sh) == 0 && magic != mxV3Magic) {
		return nn.HostTensor{}, errors.New("an empty (none) array")
	}
	if _, err := m.u64(); err != nil { // context: int32 dev_type, int32 dev_id
		return nn.HostTensor{}, err
	}
	flag, err := m.u32()
	if err != nil {
		return nn.HostTensor{}, err
	}
	dt, ok := mxDType(int32(flag))
	if !ok {
		return nn.HostTensor{}, fmt.Errorf("dtype flag %d is not supported", int32(flag))
	}
	n := int64(dt.Size())
	for _, d := range sh {
		n *= d
		if n > m.left {
			return nn.HostTensor{}, fmt.Errorf("shape %v needs more data than the file holds", sh)
		}
	}
	h := nn.HostTensor{DType: dt, Shape: sh, Data: make([]byte, n)}
	return h, m.read(h.Data)
}

// ReadMXNet reads an MXNet .params file (NDArray list format, versions
// legacy/V1/V2/V3, dense arrays) into host tensors under their stored names,
// "arg:"/"aux:" prefixes included.
func ReadMXNet(path string) (map[string]nn.HostTensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, badinput.Wrap(path, "", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, badinput.Wrap(path, "", err)
	}
	m := &mxReader{r: bufio.NewReaderSize(f, 1<<20), left: fi.Size()}
	magic, err := m.u64()
	if err != nil || magic != mxListMagic {
		return nil, badinput.New(path, "", "not an MXNet NDArray list (magic %#x, want %#x)", magic, mxListMagic)
	}
	if _, err := m.u64(); err != nil {
		return nil, badinput.Wrap(path, "", err)
	}
	count, err := m.u64()
	if err != nil || count > uint64(m.left)/4 {
		return nil, badinput.New(path, "", "bad array count %d", count)
	}
	arrays := make([]nn.HostTensor, count)
	for i := range arrays {
		if arrays[i], err = m.ndarray(); err != nil {
			return nil, badinput.New(path, fmt.Sprintf("array %d", i), "%v", err)
		}
	}
	nnames, err := m.u64()
	if err != nil {
		return nil, badinput.New(path, "", "names: %v", err)
	}
	if nnames != count {
		return nil, badinput.New(path, "", "%d names for %d arrays", nnames, count)
	}
	out := make(map[string]nn.HostTensor, count)
	for i := range arrays {
		l, err := m.u64()
		if err != nil || l > uint64(m.left) {
			return nil, badinput.New(path, fmt.Sprintf("name %d", i), "bad length %d", l)
		}
		b := make([]byte, l)
		if err := m.read(b); err != nil {
			return nil, badinput.New(path, fmt.Sprintf("name %d", i), "%v", err)
		}
		name := string(b)
		if _, dup := out[name]; dup {
			return nil, badinput.New(path, name, "duplicate name")
		}
		out[name] = arrays[i]
	}
	return out, nil
}
