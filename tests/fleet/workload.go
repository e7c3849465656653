package main

// Workloads whose profiles have shapes tests can assert on. The named functions below are part of
// the fleet's contract (tests look for them in profiles and dumps), so they are kept out of
// inlining and must not be renamed.

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// burnUnit is the number of loop iterations of burnSingle per round (burnDouble does twice
	// as many): about a millisecond on a current x86 core.
	burnUnit = 400000
	// allocChunk and the ring sizes bound the alloc workload's retained heap.
	allocChunk        = 256 << 10
	allocRingBytes    = 64 << 20
	mixedRingBytes    = 16 << 20
	allocReplaceEvery = 20 * time.Millisecond
	mixedLeakRate     = 1
	mixedDeadlockN    = 2
)

// cpuSink keeps the burners' results observable so the compiler cannot drop their loops.
var cpuSink uint64

// burnSingle does one unit of work. burnDouble runs the very same loop twice as long, so in a CPU
// profile its flat time is twice burnSingle's.
//
//go:noinline
func burnSingle(n int, x uint64) uint64 {
	for i := 0; i < n; i++ {
		x = x*6364136223846793005 + 1442695040888963407
		x ^= x >> 29
	}
	return x
}

//go:noinline
func burnDouble(n int, x uint64) uint64 {
	for i := 0; i < 2*n; i++ {
		x = x*6364136223846793005 + 1442695040888963407
		x ^= x >> 29
	}
	return x
}

// cpuBurner calls both burners one after the other in one goroutine, so their 2:1 ratio holds
// whatever the scheduler does. pause > 0 makes it a light load (the mixed workload).
func cpuBurner(pause time.Duration) {
	x := uint64(1)
	for {
		x = burnSingle(burnUnit, x)
		x = burnDouble(burnUnit, x)
		atomic.StoreUint64(&cpuSink, x)
		if pause > 0 {
			time.Sleep(pause)
		}
	}
}

// allocRing retains the most recent allocations of allocRetain, bounded by its slot count.
type allocRing struct {
	slots [][]byte
	next  int
}

// allocRetain allocates one chunk, touches its pages and keeps it in the ring, dropping the
// oldest: in a heap profile, inuse_space is dominated by this function.
//
//go:noinline
func allocRetain(r *allocRing) {
	b := make([]byte, allocChunk)
	for i := 0; i < len(b); i += 4096 {
		b[i] = byte(i >> 12)
	}
	r.slots[r.next] = b
	r.next = (r.next + 1) % len(r.slots)
}

func startAlloc(ringBytes int) {
	r := &allocRing{slots: make([][]byte, ringBytes/allocChunk)}
	for range r.slots {
		allocRetain(r)
	}
	// A heap profile shows the heap as of the last GC: collect now, so a profile taken right
	// after readiness already sees the full ring.
	runtime.GC()
	go func() {
		for {
			time.Sleep(allocReplaceEvery)
			allocRetain(r)
		}
	}()
}

// leakyWorker blocks forever on a channel nobody writes: a leaked goroutine.
//
//go:noinline
func leakyWorker(never <-chan struct{}) {
	<-never
}

// startLeak leaks rate goroutines per second (spread over the second) up to maxLeaked.
func startLeak(rate int) {
	if rate <= 0 {
		return
	}
	never := make(chan struct{})
	go func() {
		start := time.Now()
		leaked := 0
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for range tick.C {
			want := int(time.Since(start).Seconds() * float64(rate))
			for leaked < want && leaked < maxLeaked {
				go leakyWorker(never)
				leaked++
			}
			if leaked >= maxLeaked {
				return
			}
		}
	}()
}

// deadlockWaiter blocks in sync.(*Mutex).Lock on a mutex that is never unlocked: the classic hung
// server.
//
//go:noinline
func deadlockWaiter(mu *sync.Mutex) {
	mu.Lock()
	mu.Unlock()
}

func startDeadlock(n int) {
	mu := new(sync.Mutex)
	mu.Lock() // never unlocked
	for i := 0; i < n; i++ {
		go deadlockWaiter(mu)
	}
}

// contendLock holds a shared mutex briefly and often while another goroutine wants it, so the
// mutex and block profiles of the mixed workload have content.
//
//go:noinline
func contendLock(mu *sync.Mutex) {
	for {
		mu.Lock()
		time.Sleep(time.Millisecond)
		mu.Unlock()
		runtime.Gosched()
	}
}

// startWorkload starts the named workload and returns once its shape is in place: the alloc ring
// is full, the deadlocked goroutines are parked in Lock.
func startWorkload(name string, o *options) error {
	switch name {
	case "idle":
	case "cpu":
		go cpuBurner(0)
	case "alloc":
		startAlloc(allocRingBytes)
	case "leak":
		startLeak(o.leakRate)
	case "deadlock":
		startDeadlock(o.deadlockN)
		return waitParked("main.deadlockWaiter(", o.deadlockN)
	case "mixed":
		go cpuBurner(10 * time.Millisecond)
		startAlloc(mixedRingBytes)
		startLeak(mixedLeakRate)
		mu := new(sync.Mutex)
		go contendLock(mu)
		go contendLock(mu)
		startDeadlock(mixedDeadlockN)
		return waitParked("main.deadlockWaiter(", mixedDeadlockN)
	default:
		return fmt.Errorf("unknown workload %q", name)
	}
	return nil
}

// waitParked waits until at least n goroutines whose stack contains fn are blocked (neither
// running nor runnable), so a dump taken right after readiness already shows all of them.
func waitParked(fn string, n int) error {
	if n == 0 {
		return nil
	}
	deadline := time.Now().Add(10 * time.Second)
	buf := make([]byte, 1<<20)
	for {
		m := runtime.Stack(buf, true)
		for m == len(buf) && len(buf) < 64<<20 {
			buf = make([]byte, 2*len(buf))
			m = runtime.Stack(buf, true)
		}
		parked := 0
		for _, block := range strings.Split(string(buf[:m]), "\n\n") {
			if !strings.Contains(block, "\n"+fn) {
				continue
			}
			if strings.Contains(block, " [running]") || strings.Contains(block, " [runnable]") {
				continue
			}
			parked++
		}
		if parked >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d goroutines in %s parked after 10s", parked, n, fn)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
