{
  "targets": [
    {
      "target_name": "ctop",
      "sources": [
        "native/addon.cc",
        "native/core/err.c",
        "native/core/probe.c",
        "native/core/map_read.c",
        "native/core/netns.c",
        "native/core/tuple_join.c",
        "native/core/tuple_ring.c",
        "native/core/census.c",
        "native/core/walk.c"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "bpf/.output",
        "bpf"
      ],
      "dependencies": [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"
      ],
      "defines": [
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"
      ],
      "libraries": ["-lbpf", "-lmnl", "-lnetfilter_conntrack", "-lnfnetlink", "-lelf", "-lz", "-lpthread"],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers", "-O2"],
      "cflags_c": ["-std=gnu11"],
      "cflags_cc": ["-std=c++17"]
    }
  ]
}
