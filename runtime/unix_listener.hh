// Whether a Unix stream socket path has a listener, read from the kernel's
// table (/proc/net/unix) without connecting to it. A harness that starts a
// back-end waits for this rather than for the socket file: the file appears
// at bind(), before listen(), and a connect in between is refused.
#pragma once

#include <string>

namespace ioe {

bool unix_socket_listening(const std::string& path);

}  // namespace ioe
