#include "tls_server.hpp"

#include <openssl/ssl.h>

#include <array>
#include <string>
#include <string_view>
#include <utility>

namespace ringpipe::exporters {
namespace {

namespace ssl = boost::asio::ssl;

// OpenSSL's reason in an Asio error, as "tls: <what>: <reason>".
tl::unexpected<Error> tls_error(const std::string& what, const boost::system::error_code& ec) {
  return invalid("tls: " + what + ": " + ec.message());
}

}  // namespace

Result<std::shared_ptr<ssl::context>> make_tls_server_context(const TlsFiles& tls) {
  if (tls.cert_file.empty()) return invalid("tls: cert_file is required");
  static constexpr std::array<std::pair<std::string_view, int>, 4> kVersions{
      {{"TLS10", TLS1_VERSION}, {"TLS11", TLS1_1_VERSION}, {"TLS12", TLS1_2_VERSION}, {"TLS13", TLS1_3_VERSION}}};
  int min_version = 0;
  int max_version = 0;
  for (const auto& [name, version] : kVersions) {
    if (tls.min_version == name) min_version = version;
    if (tls.max_version == name) max_version = version;
  }
  if (!tls.min_version.empty() && min_version == 0) {
    return invalid("tls: min_version " + tls.min_version + ": expected TLS10, TLS11, TLS12 or TLS13");
  }
  if (!tls.max_version.empty() && max_version == 0) {
    return invalid("tls: max_version " + tls.max_version + ": expected TLS10, TLS11, TLS12 or TLS13");
  }
  if (min_version != 0 && max_version != 0 && max_version < min_version) {
    return invalid("tls: max_version " + tls.max_version + " is below min_version " + tls.min_version);
  }
  std::string ciphers;
  for (const std::string& c : tls.cipher_suites) {
    if (c.empty() || c.find_first_of(":, !+-@") == 0 || c.find_first_of(":, ") != std::string::npos) {
      return invalid("tls: cipher_suites: \"" + c + "\": expected one OpenSSL cipher suite name");
    }
    ciphers += (ciphers.empty() ? "" : ":") + c;
  }
  try {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
    boost::system::error_code ec;
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                         ssl::context::no_compression | ssl::context::single_dh_use,
                     ec);
    if (ec) return tls_error("options", ec);
    if (min_version != 0 && SSL_CTX_set_min_proto_version(ctx->native_handle(), min_version) != 1) {
      return invalid("tls: min_version " + tls.min_version + ": not available in this OpenSSL");
    }
    if (max_version != 0 && SSL_CTX_set_max_proto_version(ctx->native_handle(), max_version) != 1) {
      return invalid("tls: max_version " + tls.max_version + ": not available in this OpenSSL");
    }
    // Only the suites of TLS 1.2 and older: TLS 1.3's stay OpenSSL's (Go's
    // crypto/tls, which the web config's semantics come from, fixes them too).
    // Each name must be one OpenSSL knows: a list OpenSSL only partly
    // understands is refused rather than silently shortened.
    for (const std::string& c : tls.cipher_suites) {
      if (SSL_CTX_set_cipher_list(ctx->native_handle(), c.c_str()) != 1) {
        return invalid("tls: cipher_suites: " + c + ": not a cipher suite this OpenSSL offers");
      }
    }
    if (!ciphers.empty() && SSL_CTX_set_cipher_list(ctx->native_handle(), ciphers.c_str()) != 1) {
      return invalid("tls: cipher_suites: " + ciphers + ": none this OpenSSL offers");
    }
    if (tls.prefer_server_cipher_suites) {
      SSL_CTX_set_options(ctx->native_handle(), SSL_OP_CIPHER_SERVER_PREFERENCE);
    } else {
      SSL_CTX_clear_options(ctx->native_handle(), SSL_OP_CIPHER_SERVER_PREFERENCE);
    }
    if (ctx->use_certificate_chain_file(tls.cert_file, ec); ec) return tls_error("cert_file " + tls.cert_file, ec);
    const std::string& key = tls.key_file.empty() ? tls.cert_file : tls.key_file;
    if (ctx->use_private_key_file(key, ssl::context::pem, ec); ec) return tls_error("key_file " + key, ec);
    if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
      return invalid("tls: key_file " + key + ": the key does not match the certificate in " + tls.cert_file);
    }
    // Resumed sessions of a server that verifies clients need an id context.
    static constexpr std::string_view kSessionContext = "ringpipe-exporter";
    (void)SSL_CTX_set_session_id_context(ctx->native_handle(),
                                         reinterpret_cast<const unsigned char*>(kSessionContext.data()),
                                         static_cast<unsigned int>(kSessionContext.size()));
    if (!tls.ca_file.empty()) {
      if (ctx->load_verify_file(tls.ca_file, ec); ec) return tls_error("ca_file " + tls.ca_file, ec);
      // The CAs the handshake names to the client, so it can pick its certificate.
      STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.ca_file.c_str());
      if (names == nullptr) return invalid("tls: ca_file " + tls.ca_file + ": no CA certificate in it");
      SSL_CTX_set_client_CA_list(ctx->native_handle(), names);
      if (ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert, ec); ec) {
        return tls_error("client verification", ec);
      }
    }
    return ctx;
  } catch (const std::exception& e) {  // ssl::context's constructor throws when OpenSSL cannot make one
    return invalid(std::string("tls: ") + e.what());
  }
}

}  // namespace ringpipe::exporters
