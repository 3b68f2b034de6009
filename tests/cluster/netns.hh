// A network namespace for the cluster tests that cut a node off: the node's
// daemon runs inside it, reached from the host over a veth pair with 10.x
// addresses; taking the host end down cuts it off without any FIN or RST.
// Needs root (ip netns). Removed (with the veth pair) when destroyed.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace ioe::cluster_test {

// Runs `cmd` through the shell, output discarded; its exit status.
inline int sh(const std::string& cmd) {
    const int rc = std::system((cmd + " >/dev/null 2>&1").c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// A namespace "ioe-cl-PID" joined to the host by veth "ioehPID" (host end,
// 10.A.B.1/30) and "ioenPID" (inside, 10.A.B.2/30).
struct netns {
    std::string name, host_if, ns_if, host_ip, ns_ip;
    bool made = false;
    netns() {
        const unsigned pid = static_cast<unsigned>(::getpid());
        name = "ioe-cl-" + std::to_string(pid);
        host_if = "ioeh" + std::to_string(pid % 1000000);
        ns_if = "ioen" + std::to_string(pid % 1000000);
        const std::string net = "10." + std::to_string(200 + pid % 50) + "." + std::to_string((pid / 50) % 250) + ".";
        host_ip = net + "1";
        ns_ip = net + "2";
    }
    bool make() {
        if (sh("ip netns add " + name) != 0) return false;
        made = true;
        return sh("ip link add " + host_if + " type veth peer name " + ns_if) == 0 &&
               sh("ip link set " + ns_if + " netns " + name) == 0 &&
               sh("ip addr add " + host_ip + "/30 dev " + host_if) == 0 && sh("ip link set " + host_if + " up") == 0 &&
               sh(in() + "ip addr add " + ns_ip + "/30 dev " + ns_if) == 0 &&
               sh(in() + "ip link set " + ns_if + " up") == 0 && sh(in() + "ip link set lo up") == 0;
    }
    std::string in() const { return "ip netns exec " + name + " "; }
    ~netns() {
        if (!made) return;
        sh("ip link del " + host_if);
        sh("ip netns del " + name);
    }
};

}  // namespace ioe::cluster_test
