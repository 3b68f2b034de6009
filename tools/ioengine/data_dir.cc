// The daemon's data directory (data_dir.hh).
#include "tools/ioengine/data_dir.hh"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace ioe::daemon {

data_dir::data_dir(const std::string& path, std::uint64_t default_pool_mb) {
    std::error_code ec;
    auto abs = std::filesystem::absolute(path, ec).lexically_normal();
    if (ec) throw std::runtime_error("data directory " + path + ": " + ec.message());
    std::filesystem::create_directories(abs, ec);
    if (ec) throw std::runtime_error("cannot create the data directory " + abs.native() + ": " + ec.message());
    _path = abs.native();
    if (_path.size() > 1 && _path.back() == '/') _path.pop_back();
    _state = rpc::load_state_file(state_path());
    if (default_pool_mb) {
        std::string img = _path + "/default.img";
        int fd = ::open(img.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) {
            int rc = ::ftruncate(fd, static_cast<off_t>(default_pool_mb << 20));
            int err = errno;
            ::fsync(fd);
            ::close(fd);
            if (rc != 0) {
                ::unlink(img.c_str());
                throw std::runtime_error("cannot size " + img + ": " + std::strerror(err));
            }
        } else if (errno != EEXIST) {
            throw std::runtime_error("cannot create " + img + ": " + std::strerror(errno));
        }
    }
}

}  // namespace ioe::daemon
