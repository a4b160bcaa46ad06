package wasm

// InBackground runs f at a lower scheduling priority, as the manager does its
// own background work (inBackground): for the gateway's share of a plugin
// upload, decoding megabytes of JSON and base64.
func InBackground(f func()) { inBackground(f) }

// inBackground runs f at a lower scheduling priority where the platform
// allows (background_linux.go) and waits for it. It is for the work a hot
// swap or a replaced instance costs (compiling a module, making instances):
// milliseconds of CPU that a guest cannot yield, which the requests the
// gateway is serving meanwhile should not have to share a core with as
// equals. A panic in f is raised again in the caller.
func inBackground(f func()) {
	var panicked any
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { panicked = recover() }()
		lowerPriority()
		f()
	}()
	<-done
	if panicked != nil {
		panic(panicked)
	}
}
