#include "tls_shim.hpp"

#include <civetweb.h>
#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <vector>

#include "ringpipe/common/log.hpp"

namespace ringpipe::exporters {
namespace {

// civetweb (1.15, OpenSSL 1.1 API) dlopen()s "libssl.so" at run time and
// calls SSL_get_peer_certificate for every TLS connection; OpenSSL 3 no longer
// exports that name (it became SSL_get1_peer_certificate). Without it civetweb
// calls a null pointer at the first handshake. libringpipe_ssl_compat.so
// (src/ssl_compat.cpp) has SONAME libssl.so, defines the old name and needs the
// real libssl.so.3: loaded RTLD_GLOBAL before civetweb starts, it is what
// civetweb's dlopen("libssl.so") returns, and dlsym() on it finds the old name
// in the shim and every other one in libssl.so.3.
std::vector<std::string> ssl_compat_candidates() {
  std::vector<std::string> out;
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec && exe.has_parent_path()) {
    out.push_back((exe.parent_path() / RINGPIPE_SSL_COMPAT_NAME).string());                                 // beside it
    out.push_back((exe.parent_path().parent_path() / "lib/ringpipe" / RINGPIPE_SSL_COMPAT_NAME).string());  // installed
  }
  out.emplace_back(RINGPIPE_SSL_COMPAT_BUILD_PATH);  // build tree
  return out;
}

// Loads the shim once per process (never unloaded).
Status load_ssl_compat() {
  static const Status loaded = []() -> Status {
    std::string tried;
    for (const std::string& path : ssl_compat_candidates()) {
      std::error_code ec;
      if (!std::filesystem::is_regular_file(path, ec)) {
        tried += (tried.empty() ? "" : ", ") + path;
        continue;
      }
      void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
      if (handle == nullptr) {
        const char* why = ::dlerror();
        return make_error(std::errc::not_supported,
                          "tls: cannot load " + path + ": " + (why != nullptr ? why : "dlopen failed"));
      }
      spdlog::debug("prometheus exporter: tls: loaded {}", path);
      return {};
    }
    return make_error(std::errc::no_such_file_or_directory,
                      std::string("tls: civetweb needs the OpenSSL 3 compatibility library ") +
                          RINGPIPE_SSL_COMPAT_NAME + ", not found (looked for " + tried +
                          "); install it with ringpipe or put it next to the executable");
  }();
  return loaded;
}

}  // namespace

Status civetweb_tls_usable() {
  if (mg_check_feature(2) == 0) return make_error(std::errc::not_supported, "tls: civetweb was built without TLS");
  if (Status shim = load_ssl_compat(); !shim) return shim;
  void* ssl = ::dlopen("libssl.so", RTLD_LAZY | RTLD_LOCAL);
  if (ssl == nullptr) {
    return make_error(std::errc::not_supported,
                      "tls: civetweb needs libssl.so, which cannot be loaded (install libssl-dev)");
  }
  const bool ok = ::dlsym(ssl, "SSL_get_peer_certificate") != nullptr && ::dlsym(ssl, "SSL_new") != nullptr;
  ::dlclose(ssl);
  if (!ok) {
    return make_error(std::errc::not_supported,
                      "tls: libssl.so as civetweb loads it lacks SSL_get_peer_certificate or SSL_new even with "
                      "the compatibility library loaded; serving HTTPS would crash at the first handshake");
  }
  return {};
}

// civetweb wants key and certificate in one PEM file.
Result<std::string> combined_pem(const TlsFiles& tls, std::string* temp_path) {
  if (tls.key_file.empty() || tls.key_file == tls.cert_file) return tls.cert_file;
  std::ifstream key(tls.key_file, std::ios::binary);
  if (!key) return errno_error("tls: key_file " + tls.key_file);
  std::ifstream cert(tls.cert_file, std::ios::binary);
  if (!cert) return errno_error("tls: cert_file " + tls.cert_file);
  char path[] = "/tmp/ringpipe-tls-XXXXXX";
  const int fd = ::mkstemp(path);  // mode 0600
  if (fd < 0) return errno_error("tls: temporary PEM");
  ::close(fd);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << key.rdbuf() << '\n' << cert.rdbuf() << '\n';
  if (!out) {
    std::filesystem::remove(path);
    return errno_error(std::string("tls: writing ") + path);
  }
  *temp_path = path;
  return std::string(path);
}

}  // namespace ringpipe::exporters
