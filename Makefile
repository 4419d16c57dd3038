GO      ?= go
BIN     := bin/minidock
export CGO_ENABLED := 0

.PHONY: build test test-runc vet bench clean

build:
	$(GO) build -trimpath -ldflags '-s -w' -o $(BIN) ./cmd/minidock

vet:
	$(GO) vet ./...

clean:
	rm -rf bin
