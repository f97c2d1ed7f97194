#pragma once
// The VmFlags line of the mapping in /proc/self/smaps that holds an address:
// " hg" in it says the mapping is advised huge pages (MADV_HUGEPAGE).

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

namespace ringpipe::common {

// The VmFlags line of the mapping in /proc/self/smaps that holds `p`.
inline std::string vm_flags_at(const void* p) {
  const auto at = reinterpret_cast<std::uintptr_t>(p);
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    std::uintptr_t lo = 0;
    std::uintptr_t hi = 0;
    char dash = 0;
    std::istringstream range(line);
    if (range >> std::hex >> lo >> dash >> hi && dash == '-' && line.find(':') > line.find(' ')) {
      inside = lo <= at && at < hi;
      continue;
    }
    if (inside && line.rfind("VmFlags:", 0) == 0) return line;
  }
  return {};
}

}  // namespace ringpipe::common
