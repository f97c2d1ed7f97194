#pragma once
// The pull endpoint's TLS: civetweb's own OpenSSL support, made usable with
// OpenSSL 3 by loading libringpipe_ssl_compat.so (ssl_compat.cpp) first, and
// the single PEM file civetweb wants. Called by create() before the server
// starts; safe from any thread (the shim is loaded once per process).
// Failures come back as Status/Result, never thrown.

#include <string>

#include "ringpipe/common/result.hpp"
#include "ringpipe/exporters/prometheus_exporter.hpp"

namespace ringpipe::exporters {

// Whether civetweb can serve TLS here: built with TLS, the compatibility
// library loaded and libssl.so, as civetweb loads it, exporting every name it
// needs. An error names what is missing (and the paths looked at).
[[nodiscard]] Status civetweb_tls_usable();

// The PEM file to give civetweb: `tls.cert_file` when it holds the key too,
// else a temporary file (mode 0600, its path in *temp_path) with key and
// certificate, which the caller removes once the server has read it.
[[nodiscard]] Result<std::string> combined_pem(const TlsFiles& tls, std::string* temp_path);

}  // namespace ringpipe::exporters
