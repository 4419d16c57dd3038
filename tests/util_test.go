package tests

import (
	"encoding/json"
	"os"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"minidock/runtime"
)

func jsonUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

func unsafePointer(p *byte) unsafe.Pointer { return unsafe.Pointer(p) }

func jsonMarshal(v any) ([]byte, error) { return json.MarshalIndent(v, "", " ") }

func writeFile(p string, data []byte) error { return os.WriteFile(p, data, 0o644) }

func defaultSpec() *specs.Spec { return runtime.DefaultSpec() }
