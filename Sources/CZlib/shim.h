#ifndef CAPDIAG_CZLIB_SHIM_H
#define CAPDIAG_CZLIB_SHIM_H
#include <zlib.h>
// inflateInit2 is a macro: this names it for Swift. 15 + 16: a gzip stream (RFC 1952), 32 KiB window.
static inline int capdiag_inflate_init_gzip(z_stream *stream) { return inflateInit2(stream, 15 + 16); }
#endif
