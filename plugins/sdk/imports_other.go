//go:build !wasip1

package sdk

import "unsafe"

// Outside GOOS=wasip1 there is no host: these stubs let plugins and the SDK
// compile (go vet, go build ./...) and panic when called.

const notWasm = "sdk: host functions are only available in GOOS=wasip1 GOARCH=wasm builds"

func hostEnableFeatures(uint32) uint32                     { panic(notWasm) }
func hostGetConfig(unsafe.Pointer, uint32) uint32          { panic(notWasm) }
func hostLogEnabled(int32) uint32                          { panic(notWasm) }
func hostLog(int32, unsafe.Pointer, uint32)                { panic(notWasm) }
func hostGetMethod(unsafe.Pointer, uint32) uint32          { panic(notWasm) }
func hostSetMethod(unsafe.Pointer, uint32)                 { panic(notWasm) }
func hostGetURI(unsafe.Pointer, uint32) uint32             { panic(notWasm) }
func hostSetURI(unsafe.Pointer, uint32)                    { panic(notWasm) }
func hostGetProtocolVersion(unsafe.Pointer, uint32) uint32 { panic(notWasm) }
func hostGetHeaderNames(uint32, unsafe.Pointer, uint32) uint64 {
	panic(notWasm)
}
func hostGetHeaderValues(uint32, unsafe.Pointer, uint32, unsafe.Pointer, uint32) uint64 {
	panic(notWasm)
}
func hostSetHeaderValue(uint32, unsafe.Pointer, uint32, unsafe.Pointer, uint32) { panic(notWasm) }
func hostAddHeaderValue(uint32, unsafe.Pointer, uint32, unsafe.Pointer, uint32) { panic(notWasm) }
func hostRemoveHeader(uint32, unsafe.Pointer, uint32)                           { panic(notWasm) }
func hostReadBody(uint32, unsafe.Pointer, uint32) uint64                        { panic(notWasm) }
func hostWriteBody(uint32, unsafe.Pointer, uint32)                              { panic(notWasm) }
func hostGetStatusCode() uint32                                                 { panic(notWasm) }
func hostSetStatusCode(uint32)                                                  { panic(notWasm) }
func hostGetSourceAddr(unsafe.Pointer, uint32) uint32                           { panic(notWasm) }
func hostCounterIncr(unsafe.Pointer, uint32, int64, int64, unsafe.Pointer) uint32 {
	panic(notWasm)
}
func hostNowUnixMillis() int64        { panic(notWasm) }
func hostFail(unsafe.Pointer, uint32) { panic(notWasm) }
