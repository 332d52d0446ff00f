package gpu

import (
	"runtime"
	"time"
)

// Waiting for the GPU. wgpu's blocking wait (Poll with wait set) gives up
// after a few seconds and then treats the work it waited for as finished:
// it resets command pools and frees buffers the device may still be using.
// A slow device (lavapipe running a long prefill pass on a real-sized
// model) then crashes in its execution thread, and the Vulkan validation
// layer reports "vkResetCommandPool ... in use" and "vkDestroyBuffer ... in
// use". So this package never waits inside wgpu: it polls without waiting,
// which retires only what has really finished, until the condition holds.

// pollSpin is how long pollUntil spins before it starts sleeping: short
// waits (a GPU's decode step) end without a sleep's latency.
const pollSpin = 500 * time.Microsecond

// pollUntil polls the device until done, given whether the queue is empty,
// reports true: spinning at first, then sleeping with a pause that grows to
// 1 ms.
func (d *Device) pollUntil(done func(queueEmpty bool) bool) {
	start := time.Now()
	pause := 20 * time.Microsecond
	for {
		if done(d.dev.Poll(false, nil)) {
			return
		}
		if time.Since(start) < pollSpin {
			runtime.Gosched()
			continue
		}
		time.Sleep(pause)
		pause = min(2*pause, time.Millisecond)
	}
}

// awaitIdle returns once every submitted command has finished.
func (d *Device) awaitIdle() { d.pollUntil(func(empty bool) bool { return empty }) }
