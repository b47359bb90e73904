package data_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/l2g/l2g/internal/data"
)

func TestPrefetchOrderAndBound(t *testing.T) {
	const n, depth = 200, 5
	order := rand.New(rand.NewPCG(1, 2)).Perm(n)
	var ahead, maxAhead atomic.Int64
	load := func(_ context.Context, i int) (string, error) {
		// Random latency so that workers finish out of order.
		time.Sleep(time.Duration(i%7) * 20 * time.Microsecond)
		a := ahead.Add(1)
		for {
			m := maxAhead.Load()
			if a <= m || maxAhead.CompareAndSwap(m, a) {
				break
			}
		}
		return fmt.Sprint("item", i), nil
	}
	p := data.Prefetch(context.Background(), order, data.PrefetchOptions{Workers: 4, Depth: depth}, load)
	defer p.Close()
	for pos := 0; ; pos++ {
		r, err := p.Next()
		if errors.Is(err, io.EOF) {
			if pos != n {
				t.Fatalf("EOF after %d items, want %d", pos, n)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if r.Pos != pos || r.Index != order[pos] || r.Value != fmt.Sprint("item", order[pos]) {
			t.Fatalf("position %d: got %+v, want index %d", pos, r, order[pos])
		}
		ahead.Add(-1)
	}
	if m := maxAhead.Load(); m > depth {
		t.Errorf("%d results loaded ahead of the consumer, bound is %d", m, depth)
	}
	if _, err := p.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("Next after the end = %v", err)
	}
}

func TestPrefetchFirstErrorInOrder(t *testing.T) {
	order := []int{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}
	var calls atomic.Int64
	load := func(_ context.Context, i int) (int, error) {
		calls.Add(1)
		if i == 6 || i == 2 { // 2 fails too, but later in the order
			return 0, fmt.Errorf("bad file %d.jpg", i)
		}
		return i * i, nil
	}
	p := data.Prefetch(context.Background(), order, data.PrefetchOptions{Workers: 2, Depth: 2}, load)
	defer p.Close()
	var got []int
	var err error
	for {
		var r data.Result[int]
		if r, err = p.Next(); err != nil {
			break
		}
		got = append(got, r.Value)
	}
	if fmt.Sprint(got) != "[81 64 49]" {
		t.Errorf("values before the error %v", got)
	}
	if err == nil || !strings.Contains(err.Error(), "item 6") || !strings.Contains(err.Error(), "bad file 6.jpg") {
		t.Errorf("error %v, want item 6's", err)
	}
	if _, again := p.Next(); again != err {
		t.Errorf("second Next = %v, want the same error", again)
	}
	p.Close()
	// Depth 2 stops the feeder well before the end of the order.
	if c := calls.Load(); c > 7 {
		t.Errorf("%d loads after an error at position 3 with depth 2", c)
	}
}

func TestPrefetchCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{}, 100)
	load := func(ctx context.Context, i int) (int, error) {
		if i == 0 {
			return 0, nil
		}
		started <- struct{}{}
		<-ctx.Done() // a slow decode that honours cancellation
		return 0, ctx.Err()
	}
	order := make([]int, 100)
	for i := range order {
		order[i] = i
	}
	p := data.Prefetch(ctx, order, data.PrefetchOptions{Workers: 3}, load)
	if r, err := p.Next(); err != nil || r.Index != 0 {
		t.Fatalf("first item: %+v %v", r, err)
	}
	<-started
	cancel()
	if _, err := p.Next(); !errors.Is(err, context.Canceled) {
		t.Errorf("Next after cancel = %v, want context.Canceled", err)
	}
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return after cancellation")
	}

	// Close alone (consumer stops early) also stops the workers.
	p = data.Prefetch(context.Background(), order, data.PrefetchOptions{Workers: 3}, load)
	if _, err := p.Next(); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if _, err := p.Next(); err == nil {
		t.Error("Next after Close returned no error")
	}
}
