{
  "targets": [
    {
      "target_name": "ctop",
      "sources": [
        "native/addon.cc",
        "<!@(make -s -C native addon-sources)"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "bpf/.output",
        "bpf"
      ],
      "dependencies": [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"
      ],
      # A worker thread still inside a native call when the process ends
      # (a census that outlasts BackgroundCensus.close()'s wait) is
      # terminated; the N-API calls on its way out then fail, and the C++
      # exception they raise cannot be thrown: swallowed instead of an abort.
      # test/kernel/quit.test.ts holds both this and the close() handshake.
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
