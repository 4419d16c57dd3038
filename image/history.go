package image

// LayerSizes gives the bytes of file content of each layer of img, base
// first, as `docker history` shows them; 0 for a layer it cannot read.
func (s *Store) LayerSizes(img *Image) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]int64, len(img.ChainIDs))
	for i, c := range img.ChainIDs {
		if m, err := s.readLayer(c); err == nil {
			out[i] = m.Size
		}
	}
	return out
}
