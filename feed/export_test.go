package feed

// Internals the external tests use.

// RefreshBoard rebuilds the trending boards now.
func (f *Service) RefreshBoard() { f.refreshBoard() }

// Started is closed once Run has read the store for the first time.
func (f *Service) Started() <-chan struct{} { return f.started }

// Learned returns how many observations Run has processed.
func (f *Service) Learned() int64 { return f.learned() }

// Predict returns the model's raw prediction for a fixed feature set, to
// compare models.
func (f *Service) Predict(features ...string) float64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	hs := make([]uint64, len(features))
	for i, s := range features {
		hs[i] = hash(s)
	}
	return f.r.model.predict(hs)
}

// ModelState returns copies of the model's coordinates.
func (f *Service) ModelState() (z, n []float64) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return append([]float64(nil), f.r.model.z...), append([]float64(nil), f.r.model.n...)
}
