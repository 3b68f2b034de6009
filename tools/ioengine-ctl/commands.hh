// ioengine-ctl's command plumbing shared by the files that define
// subcommands (main.cc, nexus_commands.cc, vhost_commands.cc): the global options, adding a
// subcommand, binding its action, and printing an answer as a table or JSON.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <iostream>
#include <string>

#include "rpc/client.hh"
#include "rpc/server.hh"
#include "tools/ioengine-ctl/output.hh"
#include "tools/ioengine-ctl/render.hh"

namespace ioe::ctl {

struct globals {
    std::string rpc = rpc::default_rpc_tcp;
    bool json = false;
};

template <typename T>
inline void show(const globals& g, const T& value, table (*as_table)(const T&)) {
    if (g.json) {
        std::cout << to_json(value).dump() << "\n";
    } else {
        as_table(value).print(std::cout);
    }
}

inline void ok(const globals& g, const std::string& what) {
    if (g.json) {
        std::cout << json::object().set("ok", json::boolean(true)).set("message", json::str(what)).dump() << "\n";
    } else {
        std::cout << what << "\n";
    }
}

// The options every level accepts.
inline void add_globals(CLI::App* app, globals& g) {
    app->add_option("--rpc", g.rpc, "engine RPC address: HOST:PORT or unix:PATH")
        ->capture_default_str()
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    app->add_flag("--json", g.json, "print JSON instead of a table");
}

inline CLI::App* sub(CLI::App* parent, const char* name, const char* help, globals& g) {
    auto* s = parent->add_subcommand(name, help);
    add_globals(s, g);
    return s;
}

using action_fn = std::function<void(rpc::rpc_client&)>;

// When subcommand `s` is the one given, `action` becomes `fn`.
inline void bind_action(CLI::App* s, action_fn& action, action_fn fn) {
    s->callback([&action, fn = std::move(fn)] { action = fn; });
}

// nexus ... and rebuild ... (nexus_commands.cc).
void add_nexus_commands(CLI::App& app, globals& g, action_fn& action);
// vhost ... (vhost_commands.cc).
void add_vhost_commands(CLI::App& app, globals& g, action_fn& action);
// snapshot_commands.cc: replica snapshot, clone and restore, under `replica`.
void add_snapshot_commands(CLI::App* replica, globals& g, action_fn& action);

}  // namespace ioe::ctl
