//go:build wasip1

package sdk

import "unsafe"

// Host functions of the http-wasm ABI (module "http_handler").

//go:wasmimport http_handler enable_features
func hostEnableFeatures(features uint32) uint32

//go:wasmimport http_handler get_config
func hostGetConfig(buf unsafe.Pointer, limit uint32) uint32

//go:wasmimport http_handler log_enabled
func hostLogEnabled(level int32) uint32

//go:wasmimport http_handler log
func hostLog(level int32, msg unsafe.Pointer, msgLen uint32)

//go:wasmimport http_handler get_method
func hostGetMethod(buf unsafe.Pointer, limit uint32) uint32

//go:wasmimport http_handler set_method
func hostSetMethod(ptr unsafe.Pointer, n uint32)

//go:wasmimport http_handler get_uri
func hostGetURI(buf unsafe.Pointer, limit uint32) uint32

//go:wasmimport http_handler set_uri
func hostSetURI(ptr unsafe.Pointer, n uint32)

//go:wasmimport http_handler get_protocol_version
func hostGetProtocolVersion(buf unsafe.Pointer, limit uint32) uint32

//go:wasmimport http_handler get_header_names
func hostGetHeaderNames(kind uint32, buf unsafe.Pointer, limit uint32) uint64

//go:wasmimport http_handler get_header_values
func hostGetHeaderValues(kind uint32, name unsafe.Pointer, nameLen uint32, buf unsafe.Pointer, limit uint32) uint64

//go:wasmimport http_handler set_header_value
func hostSetHeaderValue(kind uint32, name unsafe.Pointer, nameLen uint32, value unsafe.Pointer, valueLen uint32)

//go:wasmimport http_handler add_header_value
func hostAddHeaderValue(kind uint32, name unsafe.Pointer, nameLen uint32, value unsafe.Pointer, valueLen uint32)

//go:wasmimport http_handler remove_header
func hostRemoveHeader(kind uint32, name unsafe.Pointer, nameLen uint32)

//go:wasmimport http_handler read_body
func hostReadBody(kind uint32, buf unsafe.Pointer, limit uint32) uint64

//go:wasmimport http_handler write_body
func hostWriteBody(kind uint32, buf unsafe.Pointer, n uint32)

//go:wasmimport http_handler get_status_code
func hostGetStatusCode() uint32

//go:wasmimport http_handler set_status_code
func hostSetStatusCode(code uint32)

//go:wasmimport http_handler get_source_addr
func hostGetSourceAddr(buf unsafe.Pointer, limit uint32) uint32

// Host functions of the gateway's extension module "seckill".

//go:wasmimport seckill counter_incr
func hostCounterIncr(key unsafe.Pointer, keyLen uint32, delta int64, ttlMillis int64, result unsafe.Pointer) uint32

//go:wasmimport seckill now_unix_ms
func hostNowUnixMillis() int64

//go:wasmimport seckill fail
func hostFail(msg unsafe.Pointer, msgLen uint32)

// Guest exports. The host calls handle_request for every request and
// handle_response after the next handler when handle_request asked for it.

//go:wasmexport handle_request
func exportHandleRequest() uint64 { return handleRequest() }

//go:wasmexport handle_response
func exportHandleResponse(reqCtx uint32, isError uint32) { handleResponse(reqCtx, isError) }

// seckill_request_only tells the seckill gateway that handle_response does
// nothing, so the gateway returns the instance to its pool right after
// handle_request instead of holding it until the response is produced.
//
//go:wasmexport seckill_request_only
func exportRequestOnly() {}
