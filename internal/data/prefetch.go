package data

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
)

// PrefetchOptions bounds a Prefetcher. Zero values pick the defaults.
type PrefetchOptions struct {
	Workers int // concurrent load calls; 0 = runtime.NumCPU()
	Depth   int // most results loaded ahead of the consumer; 0 = 2 × Workers
}

// Result is one loaded item: Pos is its position in the requested order,
// Index the item index that was requested there.
type Result[T any] struct {
	Pos   int
	Index int
	Value T
}

type slot[T any] struct {
	v   T
	err error
}

// Prefetcher runs load on a pool of goroutines ahead of a consumer and hands
// back the results strictly in the requested order, so a training loop can
// shuffle by passing a permuted order and still get a deterministic stream.
// At most Depth results wait unconsumed, which bounds memory.
//
// Use it like sql.Rows: call Next until it returns io.EOF or an error, and
// always call Close (it stops the workers and waits for them), e.g.
//
//	p := data.Prefetch(ctx, order, data.PrefetchOptions{}, split.Load)
//	defer p.Close()
//	for {
//		r, err := p.Next()
//		if err == io.EOF { break }
//		if err != nil { return err }
//		use(r.Value)
//	}
type Prefetcher[T any] struct {
	order  []int
	ctx    context.Context
	cancel context.CancelFunc
	ring   []chan slot[T] // position p lands in ring[p%len(ring)]
	tokens chan struct{}  // one per result that may be in flight
	wg     sync.WaitGroup
	next   int
	err    error // sticky: the first error Next returned
	closed bool
}

// Prefetch starts loading order[0], order[1], … with load and returns the
// Prefetcher delivering them in that order. load receives a context that is
// cancelled by Close, by the first error, or with ctx; it must be safe to
// call concurrently.
func Prefetch[T any](ctx context.Context, order []int, opt PrefetchOptions, load func(ctx context.Context, i int) (T, error)) *Prefetcher[T] {
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	depth := opt.Depth
	if depth <= 0 {
		depth = 2 * workers
	}
	ictx, cancel := context.WithCancel(ctx)
	p := &Prefetcher[T]{
		order:  order,
		ctx:    ictx,
		cancel: cancel,
		ring:   make([]chan slot[T], depth),
		tokens: make(chan struct{}, depth),
	}
	for i := range p.ring {
		p.ring[i] = make(chan slot[T], 1)
	}
	jobs := make(chan int)
	p.wg.Add(1 + workers)
	// The feeder takes a token before handing out position q, and Next
	// returns one per consumed result, so q is dispatched only after q-depth
	// was consumed: the one-slot channel ring[q%depth] is then empty and a
	// worker's send never blocks.
	go func() {
		defer p.wg.Done()
		defer close(jobs)
		for pos := range order {
			select {
			case p.tokens <- struct{}{}:
			case <-ictx.Done():
				return
			}
			select {
			case jobs <- pos:
			case <-ictx.Done():
				return
			}
		}
	}()
	for range workers {
		go func() {
			defer p.wg.Done()
			for pos := range jobs {
				v, err := load(ictx, order[pos])
				p.ring[pos%depth] <- slot[T]{v, err}
			}
		}()
	}
	return p
}

// Next returns the next result in the requested order, io.EOF after the
// last one, or the first error: load's error for that position (wrapped
// with the item index), or the context's error. After an error every call
// returns it again and the workers are stopped.
func (p *Prefetcher[T]) Next() (Result[T], error) {
	var zero Result[T]
	if p.err != nil {
		return zero, p.err
	}
	if p.next >= len(p.order) {
		return zero, io.EOF
	}
	pos := p.next
	var s slot[T]
	select {
	case s = <-p.ring[pos%len(p.ring)]:
	case <-p.ctx.Done():
		p.fail(fmt.Errorf("prefetch: %w", context.Cause(p.ctx)))
		return zero, p.err
	}
	if s.err != nil {
		p.fail(fmt.Errorf("prefetch item %d: %w", p.order[pos], s.err))
		return zero, p.err
	}
	<-p.tokens
	p.next++
	return Result[T]{Pos: pos, Index: p.order[pos], Value: s.v}, nil
}

func (p *Prefetcher[T]) fail(err error) {
	p.err = err
	p.cancel()
}

// Close stops the workers and waits for them to return. It is safe to call
// more than once and after an error.
func (p *Prefetcher[T]) Close() {
	if p.closed {
		return
	}
	p.closed = true
	p.cancel()
	// Workers blocked on a send cannot be: each ring slot has room (see
	// Prefetch), so Wait only waits for in-flight load calls.
	p.wg.Wait()
	if p.err == nil {
		p.err = errors.New("prefetch: Next after Close")
	}
}
