#pragma once
// The pull endpoint's TLS: one OpenSSL server context (boost::asio::ssl) made
// from the exporter's PEM files, before the server starts. The context is
// immutable afterwards and shared by every connection's stream. Failures
// come back as Result, never thrown.

#include <memory>

#include <boost/asio/ssl/context.hpp>

#include "ringpipe/common/result.hpp"
#include "ringpipe/exporters/prometheus_exporter.hpp"

namespace ringpipe::exporters {

// A server context serving `tls.cert_file` (a chain; the key from
// `tls.key_file`, or from cert_file when that is empty), at least
// `tls.min_version` and at most `tls.max_version` ("TLS10".."TLS13"; "" =
// OpenSSL's default), offering `tls.cipher_suites` (OpenSSL names; TLS 1.2
// and older) in that order, the server's order winning with
// `prefer_server_cipher_suites`. With `tls.ca_file` set, every client must
// present a certificate that those CAs signed (exporter-toolkit's
// RequireAndVerifyClientCert). Errors read "tls: cert_file PATH: <OpenSSL's
// reason>".
[[nodiscard]] Result<std::shared_ptr<boost::asio::ssl::context>> make_tls_server_context(const TlsFiles& tls);

}  // namespace ringpipe::exporters
