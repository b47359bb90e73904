package torch_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/l2g/l2g/internal/torch"
)

// libtorch failures come back as *torch.Error values and the process lives.
func TestErrorsReturnAndProcessLives(t *testing.T) {
	cases := []struct {
		name string
		run  func(s *torch.Scope) error
		want string
	}{
		{"conv2d channel mismatch", func(s *torch.Scope) error {
			x := s.Zeros([]int64{1, 3, 8, 8}, torch.Opts{})
			w := s.Zeros([]int64{4, 5, 3, 3}, torch.Opts{})
			s.Conv2d(x, w, nil, torch.Conv2dOpts{})
			return s.Err()
		}, "conv2d"},
		{"backward without grad", func(s *torch.Scope) error {
			x := s.Ones([]int64{3}, torch.Opts{})
			return s.Sum(x, nil, false).Backward()
		}, "does not require grad"},
		{"bad dtype", func(s *torch.Scope) error {
			s.Zeros([]int64{2}, torch.Opts{DType: torch.DType(99)})
			return s.Err()
		}, "unknown dtype"},
		{"out-of-range index", func(s *torch.Scope) error {
			x := s.Zeros([]int64{4, 2}, torch.Opts{})
			s.IndexSelect(x, 0, s.FromInt64([]int64{7}, 1))
			return s.Err()
		}, "index"},
		{"narrow past the end", func(s *torch.Scope) error {
			s.Narrow(s.Zeros([]int64{4}, torch.Opts{}), 0, 3, 5)
			return s.Err()
		}, "narrow"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := torch.NewScope()
			defer s.Close()
			err := c.run(s)
			var te *torch.Error
			if !errors.As(err, &te) {
				t.Fatalf("got %v (%T), want *torch.Error", err, err)
			}
			if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(c.want)) {
				t.Fatalf("error %q does not mention %q", err, c.want)
			}
			if strings.Contains(te.Msg, "Exception raised from") {
				t.Fatalf("message carries a C++ backtrace: %q", te.Msg)
			}
		})
	}
	// Still alive and working after the failures.
	s := torch.NewScope()
	defer s.Close()
	v, err := s.Sum(s.Ones([]int64{3}, torch.Opts{}), nil, false).Item()
	if err != nil || v != 3 {
		t.Fatalf("after errors: %v %v", v, err)
	}
}

// After an error the scope's later ops are skipped and return nil.
func TestScopeErrorSticks(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	x := s.Zeros([]int64{2, 3}, torch.Opts{})
	bad := s.Matmul(x, x)
	if bad != nil || s.Err() == nil {
		t.Fatalf("matmul 2x3·2x3 should fail")
	}
	first := s.Err()
	if y := s.Relu(x); y != nil {
		t.Fatal("op after a failure ran")
	}
	if s.Err() != first {
		t.Fatal("the first error was replaced")
	}
}

func TestScopeFreesAndKeep(t *testing.T) {
	s := torch.NewScope()
	a := s.Ones([]int64{2}, torch.Opts{})
	b := s.Keep(s.AddScalar(a, 1))
	if s.Len() != 1 {
		t.Fatalf("scope owns %d tensors, want 1", s.Len())
	}
	s.Close()
	if a.Valid() {
		t.Fatal("scope close did not free its tensor")
	}
	v, err := b.Float32s()
	if err != nil || v[0] != 2 {
		t.Fatalf("kept tensor: %v %v", v, err)
	}
	b.Free()
	b.Free() // twice is fine
}

func TestDTypesRoundTrip(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	src := s.FromFloat64([]float64{1.5, -2.25, 3}, 3)
	for _, dt := range []torch.DType{torch.Float32, torch.Float64, torch.Float16, torch.BFloat16, torch.Int64, torch.Uint8, torch.Bool} {
		x := s.To(src, torch.Opts{DType: dt})
		if x.DType() != dt {
			t.Fatalf("%v: got %v", dt, x.DType())
		}
		b, err := x.Bytes()
		if err != nil || len(b) != 3*dt.Size() {
			t.Fatalf("%v: %d bytes, err %v", dt, len(b), err)
		}
	}
	u, _ := s.To(src, torch.Opts{DType: torch.Uint8}).Uint8s()
	if u[0] != 1 || u[2] != 3 {
		t.Fatalf("uint8 %v", u)
	}
	if _, err := src.Int64s(); err == nil {
		t.Fatal("reading float64 as int64 should fail")
	}
}

func TestRNGStateRestores(t *testing.T) {
	if err := torch.ManualSeed(11); err != nil {
		t.Fatal(err)
	}
	st, err := torch.RNGState()
	if err != nil {
		t.Fatal(err)
	}
	s := torch.NewScope()
	defer s.Close()
	a, _ := s.Rand([]int64{5}, torch.Opts{}).Float32s()
	if err := torch.SetRNGState(st); err != nil {
		t.Fatal(err)
	}
	b, _ := s.Rand([]int64{5}, torch.Opts{}).Float32s()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("draws differ after restoring state: %v vs %v", a, b)
		}
	}
}
