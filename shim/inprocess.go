package shim

// newInProcess is minidock's own runtime for the shim. Until package
// runtime is callable as a library, it is the runtime's command line.
func newInProcess(root, dir string) (Runtime, error) {
	self, err := selfBinary()
	if err != nil {
		return nil, err
	}
	return &Command{Argv: []string{self, "runtime"}, Root: root, Dir: dir}, nil
}
