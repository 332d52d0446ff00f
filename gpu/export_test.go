package gpu

func (r *Recorder) timeWithClockForTest() (Timing, error) {
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	defer r.resetLocked()
	return r.timeWithClock()
}
