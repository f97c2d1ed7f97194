// libringpipe_ssl_compat.so: lets Debian 12's civetweb 1.15 serve TLS with
// OpenSSL 3. civetweb dlopen()s "libssl.so" and dlsym()s the OpenSSL 1.1 name
// SSL_get_peer_certificate, which libssl.so.3 no longer exports (it is a macro
// for SSL_get1_peer_certificate now, same semantics: a new reference).
//
// This library's SONAME is "libssl.so" and it needs libssl.so.3 and
// libcrypto.so.3. The exporter dlopen()s it (RTLD_GLOBAL) before civetweb
// starts; glibc then answers civetweb's dlopen("libssl.so") with this object,
// and dlsym() on that handle finds the name below here and every other SSL_*
// name in the real libssl.so.3 (a dependency). Every civetweb libcrypto.so
// name still exists in OpenSSL 3, so libcrypto needs no such shim.
// Thread safety: stateless.

#include <openssl/ssl.h>

#undef SSL_get_peer_certificate

extern "C" {

// NOLINTNEXTLINE(readability-identifier-naming): the name is OpenSSL's, looked up by civetweb.
__attribute__((visibility("default"))) X509* SSL_get_peer_certificate(const SSL* ssl) {
  return SSL_get1_peer_certificate(ssl);
}

// Lets the exporter tell this object from the real libssl.
__attribute__((visibility("default"))) int ringpipe_ssl_compat_version() { return 1; }

}  // extern "C"
