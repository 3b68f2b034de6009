// The process-wide table of device schemes registered from above the storage
// layer (see backend_schemes.hh).
#include "storage/backend_schemes.hh"

#include <algorithm>
#include <map>
#include <mutex>

namespace ioe {
namespace {

struct scheme_table {
    std::mutex lock;
    std::map<std::string, backend_opener> openers;
};

scheme_table& table() {
    static scheme_table t;
    return t;
}

}  // namespace

void register_backend_scheme(std::string scheme, backend_opener opener) {
    auto& t = table();
    std::lock_guard g(t.lock);
    t.openers[std::move(scheme)] = std::move(opener);
}

backend_opener find_backend_scheme(const std::string& scheme) {
    auto& t = table();
    std::lock_guard g(t.lock);
    auto it = t.openers.find(scheme);
    return it == t.openers.end() ? backend_opener{} : it->second;
}

std::vector<std::string> registered_backend_schemes() {
    auto& t = table();
    std::lock_guard g(t.lock);
    std::vector<std::string> out;
    for (const auto& [s, _] : t.openers) out.push_back(s);
    return out;
}

}  // namespace ioe
