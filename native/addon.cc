// SPDX-License-Identifier: GPL-2.0
// Thin N-API layer over native/core: argument checks, object lifetimes, and one
// error shape ({code, errno, step, log}) for everything the core reports.
#include <napi.h>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "core/ctop_core.h"

namespace {

static_assert(sizeof(ctop_port_key) == 8, "ctop_port_key layout");
static_assert(sizeof(ctop_tuple_key) == 44, "ctop_tuple_key layout");
static_assert(sizeof(ctop_counts) == 40, "ctop_counts layout");
static_assert(offsetof(ctop_counts, drops) == 8 * CTOP_ROLE_COUNT, "ctop_counts layout");
static_assert(sizeof(ctop_port_rec) == 48, "ctop_port_rec layout");
static_assert(sizeof(ctop_tuple_rec) == 64, "ctop_tuple_rec layout");
static_assert(sizeof(ctop_port_events) == 40, "ctop_port_events layout");
static_assert(sizeof(ctop_port_event_slot) == 48, "ctop_port_event_slot layout");
static_assert(sizeof(ctop_event_rec) == 48, "ctop_event_rec layout");
static_assert(sizeof(ctop_tuple_val) == 16, "ctop_tuple_val layout");
static_assert(sizeof(ctop_tuple_moved) == 56, "ctop_tuple_moved layout");

Napi::Error NativeError(Napi::Env env, const ctop_err &e, const char *log = ctop_libbpf_log()) {
  Napi::Error err = Napi::Error::New(env, e.msg);
  err.Set("code", Napi::String::New(env, "ECTOP_NATIVE"));
  err.Set("errno", Napi::Number::New(env, e.err));
  err.Set("step", Napi::String::New(env, e.step));
  err.Set("log", Napi::String::New(env, log));
  return err;
}

// Each refused tier as a native error with its tier's name.
Napi::Array Refusals(Napi::Env env, const std::vector<ctop_tier_refusal> &refused) {
  Napi::Array a = Napi::Array::New(env, refused.size());
  for (size_t i = 0; i < refused.size(); i++) {
    Napi::Error err = NativeError(env, refused[i].err, refused[i].log);
    err.Set("tier", ctop_tier_name(refused[i].tier));
    a.Set(i, err.Value());
  }
  return a;
}

Napi::Error ArgError(Napi::Env env, const std::string &msg) {
  Napi::Error err = Napi::TypeError::New(env, msg);
  err.Set("code", Napi::String::New(env, "ECTOP_ARG"));
  return err;
}

uint32_t OptU32(const Napi::Object &o, const char *name, uint32_t dflt) {
  if (!o.Has(name) || o.Get(name).IsUndefined()) return dflt;
  Napi::Value v = o.Get(name);
  if (!v.IsNumber()) throw ArgError(o.Env(), std::string(name) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (d < 0 || d > 4294967295.0 || d != (double)(uint32_t)d)
    throw ArgError(o.Env(), std::string(name) + " must be an integer from 0 to 2^32-1");
  return (uint32_t)d;
}

Napi::Array Addrs(Napi::Env env, const ctop_census_addr *a, size_t n, uint32_t top) {
  size_t k = top && top < n ? top : n;
  Napi::Array out = Napi::Array::New(env, k);
  char text[INET6_ADDRSTRLEN];
  for (size_t i = 0; i < k; i++) {
    Napi::Object o = Napi::Object::New(env);
    if (!inet_ntop(a[i].family, a[i].addr, text, sizeof(text))) text[0] = 0;
    o.Set("family", a[i].family);
    o.Set("addr", text);
    o.Set("entries", a[i].entries);
    out.Set(i, o);
  }
  return out;
}

Napi::Object CensusToJs(Napi::Env env, const ctop_census *c, uint32_t top) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("entries", (double)c->entries);
  o.Set("assured", (double)c->assured);
  o.Set("unreplied", (double)c->unreplied);
  o.Set("parseErrors", (double)c->parse_errors);
  o.Set("groupOverflow", (double)c->group_overflow);
  o.Set("remainOverflow", (double)c->remain_overflow);
  Napi::Array groups = Napi::Array::New(env, c->ngroups);
  for (size_t i = 0; i < c->ngroups; i++) {
    const ctop_census_group &g = c->groups[i];
    Napi::Object r = Napi::Object::New(env);
    r.Set("family", g.family);
    r.Set("l4proto", g.l4proto);
    r.Set("port", g.port);
    r.Set("state", g.state == CTOP_CENSUS_NO_STATE ? env.Null() : Napi::Number::New(env, g.state));
    r.Set("entries", g.entries);
    r.Set("assured", g.assured);
    r.Set("unreplied", g.unreplied);
    groups.Set(i, r);
  }
  o.Set("groups", groups);
  // tcpRemaining: per TCP state with entries, the log2 histogram of seconds left; null when not read
  if (c->remain_valid) {
    Napi::Array rem = Napi::Array::New(env);
    uint32_t n = 0;
    for (int st = 0; st < CTOP_TCP_STATES; st++) {
      uint64_t sum = 0;
      for (int j = 0; j < CTOP_CENSUS_REMAIN_SLOTS; j++) sum += c->tcp_remain[st][j];
      if (sum == 0) continue;
      Napi::Array slots = Napi::Array::New(env, CTOP_CENSUS_REMAIN_SLOTS);
      for (int j = 0; j < CTOP_CENSUS_REMAIN_SLOTS; j++) slots.Set(j, (double)c->tcp_remain[st][j]);
      Napi::Object r = Napi::Object::New(env);
      r.Set("state", st);
      r.Set("slots", slots);
      rem.Set(n++, r);
    }
    o.Set("tcpRemaining", rem);
  } else {
    o.Set("tcpRemaining", env.Null());
  }
  o.Set("srcs", Addrs(env, c->srcs, c->nsrcs, top));
  o.Set("dsts", Addrs(env, c->dsts, c->ndsts, top));
  o.Set("distinctSrcs", (double)c->nsrcs);
  o.Set("distinctDsts", (double)c->ndsts);
  o.Set("srcOverflow", (double)c->src_overflow);
  o.Set("dstOverflow", (double)c->dst_overflow);
  return o;
}

// What every wrapper of a core handle shares: the handle, freed by close()
// or when the object is collected, and one error for a use after close().
template <typename T, typename H, void (*Destroy)(H *)>
class CoreHandle : public Napi::ObjectWrap<T> {
 public:
  CoreHandle(const Napi::CallbackInfo &info, const char *what) : Napi::ObjectWrap<T>(info), what_(what) {}
  ~CoreHandle() override { Destroy(h_); }

  Napi::Value Close(const Napi::CallbackInfo &info) {
    Destroy(h_);
    h_ = nullptr;
    return info.Env().Undefined();
  }

 protected:
  H *h_ = nullptr;

  H *Get(Napi::Env env) {
    if (!h_) throw ArgError(env, std::string(what_) + " is closed");
    return h_;
  }

 private:
  const char *what_;
};

// The addon's classes, for instanceof checks on arguments (per environment).
struct AddonData {
  Napi::FunctionReference netns;
  Napi::FunctionReference walkerStart;
};

Napi::Function NetnsClass(Napi::Env env) { return env.GetInstanceData<AddonData>()->netns.Value(); }

// ---- Probe -----------------------------------------------------------------
class Probe : public CoreHandle<Probe, ctop_probe, ctop_probe_destroy> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Probe",
                       {
                           InstanceMethod("tier", &Probe::Tier),
                           InstanceMethod("refused", &Probe::Refused),
                           InstanceMethod("programs", &Probe::Programs),
                           InstanceMethod("attachDrops", &Probe::AttachDrops),
                           InstanceMethod("seedDrops", &Probe::SeedDrops),
                           InstanceMethod("nfProgFd", &Probe::NfProgFd),
                           InstanceMethod("readPorts", &Probe::ReadPorts),
                           InstanceMethod("readTupleDeltas", &Probe::ReadTupleDeltas),
                           InstanceMethod("readTupleDeltasInto", &Probe::ReadTupleDeltasInto),
                           InstanceMethod("readTotals", &Probe::ReadTotals),
                           InstanceMethod("capacity", &Probe::Capacity),
                           InstanceMethod("portHashEntries", &Probe::PortHashEntries),
                           InstanceMethod("testRunNf", &Probe::TestRunNf),
                           InstanceMethod("readEvents", &Probe::ReadEvents),
                           InstanceMethod("close", &Probe::Close),
                       });
  }

  explicit Probe(const Napi::CallbackInfo &info) : CoreHandle(info, "the probe") {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) throw ArgError(env, "Probe(options) needs an options object");
    Napi::Object o = info[0].As<Napi::Object>();
    ctop_probe_opts opts{};
    opts.max_ports = OptU32(o, "maxPorts", CTOP_DEFAULT_MAX_PORTS);
    opts.max_tuples = OptU32(o, "maxTuples", CTOP_DEFAULT_MAX_TUPLES);
    opts.max_drop_tuples = OptU32(o, "maxDropTuples", CTOP_DEFAULT_MAX_DROP_TUPLES);
    opts.target_netns = OptU32(o, "targetNetns", 0);
    // tier: "auto" (the core's fallback, best first) or one tier's name
    if (!o.Has("tier") || !o.Get("tier").IsString()) throw ArgError(env, "tier must be auto, fentry, kprobe or netfilter");
    std::string tier = o.Get("tier").As<Napi::String>().Utf8Value();
    opts.tier = tier == "auto" ? CTOP_TIER_AUTO : ctop_tier_by_name(tier.c_str());
    if (opts.tier < 0 && tier != "auto") throw ArgError(env, "tier must be auto, fentry, kprobe or netfilter, not " + tier);
    refused_.resize(CTOP_TIER_COUNT);
    int nrefused = 0;
    ctop_err e{};
    int rc = ctop_probe_open_best(&opts, &h_, refused_.data(), &nrefused, &e);
    refused_.resize(nrefused);
    if (rc) {
      // no tier loaded: the last refusal, and every refusal as `refused`
      Napi::Error err = NativeError(env, e, refused_.back().log);
      err.Set("refused", Refusals(env, refused_));
      throw err;
    }
  }

 private:
  std::vector<ctop_tier_refusal> refused_;

  Napi::Value Tier(const Napi::CallbackInfo &info) {
    return Napi::String::New(info.Env(), ctop_tier_name(ctop_probe_tier(Get(info.Env()))));
  }

  // The better tiers the kernel refused before this one loaded.
  Napi::Value Refused(const Napi::CallbackInfo &info) { return Refusals(info.Env(), refused_); }

  // programs() -> [{name, hook, attach: "load" | "netns" | "drops", attached, skippedRuns}]
  Napi::Value Programs(const Napi::CallbackInfo &info) {
    static const char *const attach[] = {"load", "netns", "drops"};
    Napi::Env env = info.Env();
    ctop_prog_info progs[32];
    int n = 0;
    if (ctop_probe_programs(Get(env), progs, 32, &n)) throw ArgError(env, "more than 32 programs in the tier");
    Napi::Array a = Napi::Array::New(env, n);
    for (int i = 0; i < n; i++) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", progs[i].name);
      o.Set("hook", progs[i].hook);
      o.Set("attach", attach[progs[i].attach]);
      o.Set("attached", progs[i].attached != 0);
      o.Set("skippedRuns", static_cast<double>(progs[i].recursion_misses));
      a.Set(i, o);
    }
    return a;
  }

  Napi::Value AttachDrops(const Napi::CallbackInfo &info) {
    ctop_err e{};
    if (ctop_probe_attach_drops(Get(info.Env()), &e)) throw NativeError(info.Env(), e);
    return info.Env().Undefined();
  }

  // seedDrops(netns: Netns): the drop program's baseline from that namespace's drop statistic
  Napi::Value SeedDrops(const Napi::CallbackInfo &info);

  Napi::Value NfProgFd(const Napi::CallbackInfo &info) {
    return Napi::Number::New(info.Env(), ctop_probe_nf_prog_fd(Get(info.Env())));
  }

  Napi::Value ReadPorts(const Napi::CallbackInfo &info) {
    ctop_port_rec *recs = nullptr;
    size_t n = 0;
    ctop_err e{};
    if (ctop_probe_read_ports(Get(info.Env()), &recs, &n, &e)) throw NativeError(info.Env(), e);
    Napi::Buffer<uint8_t> b = Napi::Buffer<uint8_t>::Copy(info.Env(), reinterpret_cast<uint8_t *>(recs),
                                                          n * sizeof(ctop_port_rec));
    free(recs);
    return b;
  }

  // readTupleDeltas(): tuple records whose counts grew since the last call, counts = growth.
  Napi::Value ReadTupleDeltas(const Napi::CallbackInfo &info) {
    const ctop_tuple_rec *recs = nullptr;
    size_t n = 0;
    ctop_err e{};
    if (ctop_probe_read_tuple_deltas(Get(info.Env()), &recs, &n, &e)) throw NativeError(info.Env(), e);
    // recs is the probe's own buffer: copied, it stays the probe's to reuse
    return Napi::Buffer<uint8_t>::Copy(info.Env(), reinterpret_cast<const uint8_t *>(recs), n * sizeof(ctop_tuple_rec));
  }

  // readTupleDeltasInto(buffer) -> records: as readTupleDeltas, written into the caller's buffer,
  // which it keeps between reads (the live screen: no 4 MB allocation per read at 64,000 tuples).
  // The buffer must hold capacity().tuples + capacity().dropTuples records.
  Napi::Value ReadTupleDeltasInto(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsBuffer()) throw ArgError(env, "readTupleDeltasInto(buffer) needs a Buffer");
    Napi::Buffer<uint8_t> b = info[0].As<Napi::Buffer<uint8_t>>();
    const ctop_tuple_rec *recs = nullptr;
    size_t n = 0;
    ctop_err e{};
    if (ctop_probe_read_tuple_deltas(Get(env), &recs, &n, &e)) throw NativeError(env, e);
    if (n * sizeof(ctop_tuple_rec) > b.Length()) throw ArgError(env, "readTupleDeltasInto: the buffer holds fewer records than one read can");
    memcpy(b.Data(), recs, n * sizeof(ctop_tuple_rec));
    return Napi::Number::New(env, (double)n);
  }

  // Cumulative totals; numbers stay exact below 2^53 (centuries at any packet rate).
  Napi::Value ReadTotals(const Napi::CallbackInfo &info) {
    uint64_t t[CTOP_TOTAL_COUNT];
    ctop_err e{};
    if (ctop_probe_read_totals(Get(info.Env()), t, &e)) throw NativeError(info.Env(), e);
    Napi::Array a = Napi::Array::New(info.Env(), CTOP_TOTAL_COUNT);
    for (uint32_t i = 0; i < CTOP_TOTAL_COUNT; i++) a.Set(i, Napi::Number::New(info.Env(), (double)t[i]));
    return a;
  }

  // testRunNf(packet: Buffer, pf: number, hook: number) -> the program's verdict
  Napi::Value TestRunNf(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsBuffer() || !info[1].IsNumber() || !info[2].IsNumber())
      throw ArgError(env, "testRunNf(packet, pf, hook) needs a Buffer and two numbers");
    Napi::Buffer<uint8_t> b = info[0].As<Napi::Buffer<uint8_t>>();
    uint32_t retval = 0;
    ctop_err e{};
    if (ctop_probe_test_run_nf(Get(env), b.Data(), (uint32_t)b.Length(), (uint8_t)info[1].As<Napi::Number>().Uint32Value(),
                               (uint8_t)info[2].As<Napi::Number>().Uint32Value(), &retval, &e))
      throw NativeError(env, e);
    return Napi::Number::New(env, retval);
  }

  Napi::Value Capacity(const Napi::CallbackInfo &info) {
    uint32_t ports = 0, tuples = 0, drop_tuples = 0;
    ctop_probe_capacity(Get(info.Env()), &ports, &tuples, &drop_tuples);
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("ports", ports);
    o.Set("tuples", tuples);
    o.Set("dropTuples", drop_tuples);
    return o;
  }

  // Keys in the per-port hash at the last readPorts() (ctop_probe_port_hash_entries).
  Napi::Value PortHashEntries(const Napi::CallbackInfo &info) {
    return Napi::Number::New(info.Env(), ctop_probe_port_hash_entries(Get(info.Env())));
  }

  // Function tiers: struct ctop_event_rec records (empty in the netfilter tier).
  Napi::Value ReadEvents(const Napi::CallbackInfo &info) {
    ctop_event_rec *recs = nullptr;
    size_t n = 0;
    ctop_err e{};
    if (ctop_probe_read_events(Get(info.Env()), &recs, &n, &e)) throw NativeError(info.Env(), e);
    Napi::Buffer<uint8_t> b = Napi::Buffer<uint8_t>::Copy(info.Env(), reinterpret_cast<uint8_t *>(recs),
                                                          n * sizeof(ctop_event_rec));
    free(recs);
    return b;
  }

};

// ---- Netns -------------------------------------------------------------------
class Netns : public CoreHandle<Netns, ctop_netns, ctop_netns_close> {
  friend class Probe;

 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Netns",
                       {
                           InstanceMethod("links", &Netns::Links),
                           InstanceMethod("cpuStats", &Netns::CpuStats),
                           InstanceMethod("table", &Netns::Table),
                           InstanceMethod("census", &Netns::Census),
                           InstanceMethod("close", &Netns::Close),
                       });
  }

  // new Netns(path, nfProgFd): nfProgFd < 0 opens the ctnetlink socket only.
  explicit Netns(const Napi::CallbackInfo &info) : CoreHandle(info, "the namespace handle") {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber())
      throw ArgError(env, "Netns(path, progFd) needs a string and a number");
    std::string path = info[0].As<Napi::String>().Utf8Value();
    int fd = info[1].As<Napi::Number>().Int32Value();
    ctop_err e{};
    if (ctop_netns_open(path.c_str(), fd, &h_, &e)) throw NativeError(env, e);
  }

 private:
  Napi::Value Links(const Napi::CallbackInfo &info) {
    return Napi::Number::New(info.Env(), ctop_netns_links(Get(info.Env())));
  }

  Napi::Value CpuStats(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    static ctop_ct_cpu_stat stats[CTOP_MAX_CPUS];
    int n = 0;
    ctop_err e{};
    if (ctop_netns_cpu_stats(Get(env), stats, CTOP_MAX_CPUS, &n, &e)) throw NativeError(env, e);
    Napi::Array a = Napi::Array::New(env, n);
    for (int i = 0; i < n; i++) {
      const ctop_ct_cpu_stat &s = stats[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("cpu", s.cpu);
      o.Set("found", s.found);
      o.Set("invalid", s.invalid);
      o.Set("insert", s.insert);
      o.Set("insertFailed", s.insert_failed);
      o.Set("drop", s.drop);
      o.Set("earlyDrop", s.early_drop);
      o.Set("error", s.error);
      o.Set("searchRestart", s.search_restart);
      o.Set("clashResolve", s.clash_resolve);
      o.Set("chainTooLong", s.chaintoolong);
      a.Set(i, o);
    }
    return a;
  }

  Napi::Value Table(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    uint32_t count = 0, max = 0;
    ctop_err e{};
    if (ctop_netns_table(Get(env), &count, &max, &e)) throw NativeError(env, e);
    Napi::Object o = Napi::Object::New(env);
    o.Set("count", count);
    o.Set("max", max);
    return o;
  }

  // census({maxAddrs, top}): one ctnetlink dump of this namespace's table, counted in C.
  Napi::Value Census(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) throw ArgError(env, "census(options) needs an options object");
    Napi::Object opts = info[0].As<Napi::Object>();
    uint32_t max_addrs = OptU32(opts, "maxAddrs", 65536);
    uint32_t top = OptU32(opts, "top", 20);
    ctop_census *c = nullptr;
    ctop_err e{};
    if (ctop_netns_census(Get(env), max_addrs, &c, &e)) throw NativeError(env, e);
    Napi::Object o = CensusToJs(env, c, top);
    ctop_census_free(c);
    return o;
  }

};

Napi::Value Probe::SeedDrops(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw ArgError(env, "seedDrops(netns) needs a Netns");
  Napi::Object o = info[0].As<Napi::Object>();
  if (!o.InstanceOf(NetnsClass(env))) throw ArgError(env, "seedDrops(netns) needs a Netns");
  ctop_err e{};
  if (ctop_probe_seed_drops_netns(Get(env), Netns::Unwrap(o)->Get(env), &e)) throw NativeError(env, e);
  return env.Undefined();
}

bool OptBool(const Napi::Object &o, const char *name) {
  return o.Has(name) && o.Get(name).ToBoolean().Value();
}

// The walk's options as Walker and WalkerStart take them: {maxGroups, maxAddrs, probeRead, rewalkAll}
ctop_walk_opts WalkOpts(const Napi::Object &o) {
  ctop_walk_opts opts{};
  opts.max_groups = OptU32(o, "maxGroups", 65536);
  opts.max_addrs = OptU32(o, "maxAddrs", 131072);
  opts.probe_read = OptBool(o, "probeRead") ? 1 : 0;
  opts.rewalk_all = OptBool(o, "rewalkAll") ? 1 : 0;
  return opts;
}

// ---- WalkerStart: the walk programs loading on a native thread ---------------------
// Started before a command has parsed its options, so that loading and
// verifying the programs (and finding the table) overlaps loading the
// command's JavaScript; new Walker(options, start) waits for it and takes the
// programs over. Collected or closed without that, it still waits for the
// thread and unloads what it loaded.
class WalkerStart : public Napi::ObjectWrap<WalkerStart> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "WalkerStart",
                       {
                           InstanceMethod("join", &WalkerStart::Join),
                           InstanceMethod("close", &WalkerStart::Close),
                       });
  }

  // new WalkerStart({maxGroups, maxAddrs, locateOwn, probeRead, rewalkAll}) (the last two as for Walker)
  explicit WalkerStart(const Napi::CallbackInfo &info) : Napi::ObjectWrap<WalkerStart>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) throw ArgError(env, "WalkerStart(options) needs an options object");
    Napi::Object o = info[0].As<Napi::Object>();
    ctop_walk_opts opts = WalkOpts(o);
    bool locate = OptBool(o, "locateOwn");
    ctop_err e{};
    if (ctop_walk_start(&opts, locate ? 1 : 0, &s_, &e)) throw NativeError(env, e);
  }
  ~WalkerStart() override { Release(); }

  // Waits for the thread (once); the walker stays here for a Walker to take.
  const ctop_walk_started &Finish() {
    if (s_) {
      double t0 = NowMs();
      ctop_walk_start_join(s_, &w_, &r_);
      waitMs_ = NowMs() - t0;
      s_ = nullptr;
    }
    return r_;
  }
  ctop_walk *Take() {
    ctop_walk *w = w_;
    w_ = nullptr;
    return w;
  }

 private:
  struct ctop_walk_start *s_ = nullptr;
  ctop_walk *w_ = nullptr;
  ctop_walk_started r_{};
  double waitMs_ = 0;

  static double NowMs() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
  }

  void Release() {
    Finish();
    ctop_walk_destroy(w_);
    w_ = nullptr;
  }

  // join() -> {loaded, loadMs, locateMs, waitMs, table: {base, bucket} | null, locateError: Error | null}
  Napi::Value Join(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    const ctop_walk_started &r = Finish();
    Napi::Object o = Napi::Object::New(env);
    o.Set("loaded", r.load_err == 0);
    o.Set("loadMs", r.load_ms);
    o.Set("locateMs", r.locate_ms);
    o.Set("waitMs", waitMs_);
    if (r.load_err == 0 && r.locate_err == 0) {
      Napi::Object t = Napi::Object::New(env);
      t.Set("base", Napi::BigInt::New(env, r.base));
      t.Set("bucket", r.bucket);
      o.Set("table", t);
      o.Set("locateError", env.Null());
    } else {
      o.Set("table", env.Null());
      o.Set("locateError", NativeError(env, r.locate_e, "").Value());
    }
    return o;
  }

  Napi::Value Close(const Napi::CallbackInfo &info) {
    Release();
    return info.Env().Undefined();
  }
};

// ---- Walker: the conntrack hash walk (bpf/walk.bpf.c) ---------------------------
class Walker : public CoreHandle<Walker, ctop_walk, ctop_walk_destroy> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Walker",
                       {
                           InstanceMethod("capture", &Walker::Capture),
                           InstanceMethod("locate", &Walker::Locate),
                           InstanceMethod("locateOwn", &Walker::LocateOwn),
                           InstanceMethod("chains", &Walker::Chains),
                           InstanceMethod("readCensus", &Walker::ReadCensus),
                           InstanceMethod("forgetPoke", &Walker::ForgetPoke),
                           InstanceMethod("close", &Walker::Close),
                       });
  }

  // new Walker({maxGroups, maxAddrs, probeRead, rewalkAll}): map sizes of the in-kernel census;
  // probeRead (tests) loads the bpf_probe_read_kernel walk where the plain-load walk would load;
  // rewalkAll (tests) walks every chain a second time alone, as one that moved during the walk is;
  // new Walker(options, start): the programs a WalkerStart loaded (its load's error, if it failed)
  explicit Walker(const Napi::CallbackInfo &info) : CoreHandle(info, "the walker") {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) throw ArgError(env, "Walker(options) needs an options object");
    if (info.Length() >= 2 && !info[1].IsUndefined()) {
      Napi::Function cls = env.GetInstanceData<AddonData>()->walkerStart.Value();
      if (!info[1].IsObject() || !info[1].As<Napi::Object>().InstanceOf(cls))
        throw ArgError(env, "Walker(options, start) needs a WalkerStart");
      WalkerStart *st = WalkerStart::Unwrap(info[1].As<Napi::Object>());
      const ctop_walk_started &r = st->Finish();
      h_ = st->Take();
      if (!h_) throw NativeError(env, r.load_err ? r.load_e : ctop_err{EBADF, "open", "the started walker was taken already"}, r.load_log);
      return;
    }
    Napi::Object o = info[0].As<Napi::Object>();
    ctop_walk_opts opts = WalkOpts(o);
    ctop_err e{};
    if (ctop_walk_open(&opts, &h_, &e)) throw NativeError(env, e);
  }

 private:
  static uint64_t U64(Napi::Env env, const Napi::Value &v, const char *what) {
    if (!v.IsBigInt()) throw ArgError(env, std::string(what) + " must be a bigint");
    bool lossless = false;
    uint64_t x = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) throw ArgError(env, std::string(what) + " must fit in 64 bits");
    return x;
  }

  // capture(netnsPath: string | null, waitMs) -> node address (0n: none seen)
  Napi::Value Capture(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !(info[0].IsString() || info[0].IsNull()) || !info[1].IsNumber())
      throw ArgError(env, "capture(netnsPath|null, waitMs) needs a string or null and a number");
    std::string path = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
    uint64_t node = 0;
    ctop_err e{};
    if (ctop_walk_capture(Get(env), info[0].IsString() ? path.c_str() : nullptr, info[1].As<Napi::Number>().Uint32Value(),
                          &node, &e))
      throw NativeError(env, e);
    return Napi::BigInt::New(env, node);
  }

  // locate(addr: bigint, mode: 0 from a node | 1 read the pointer at a kallsyms address)
  Napi::Value Locate(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[1].IsNumber()) throw ArgError(env, "locate(addr, mode) needs a bigint and a number");
    uint64_t base = 0;
    uint32_t bucket = 0;
    ctop_err e{};
    if (ctop_walk_locate(Get(env), U64(env, info[0], "addr"), info[1].As<Napi::Number>().Uint32Value(), &base, &bucket, &e))
      throw NativeError(env, e);
    Napi::Object o = Napi::Object::New(env);
    o.Set("base", Napi::BigInt::New(env, base));
    o.Set("bucket", bucket);
    return o;
  }

  // locateOwn() -> {base, bucket}: from an entry of ctop's own in a namespace of its own (Linux >= 6.0)
  Napi::Value LocateOwn(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    uint64_t base = 0;
    uint32_t bucket = 0;
    ctop_err e{};
    if (ctop_walk_locate_own(Get(env), &base, &bucket, &e)) throw NativeError(env, e);
    Napi::Object o = Napi::Object::New(env);
    o.Set("base", Napi::BigInt::New(env, base));
    o.Set("bucket", bucket);
    return o;
  }

  // chains(base: bigint, size, perRun, census: boolean, addrs: boolean, threads: number (0: one per CPU))
  Napi::Value Chains(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (info.Length() < 6 || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsBoolean() || !info[4].IsBoolean() ||
        !info[5].IsNumber())
      throw ArgError(env, "chains(base, size, perRun, census, addrs, threads) needs a bigint, two numbers, two booleans and a number");
    ctop_walk_result r{};
    ctop_err e{};
    if (ctop_walk_chains(Get(env), U64(env, info[0], "base"), info[1].As<Napi::Number>().Uint32Value(),
                         info[2].As<Napi::Number>().Uint32Value(), info[3].ToBoolean().Value() ? 1 : 0,
                         info[4].ToBoolean().Value() ? 1 : 0, info[5].As<Napi::Number>().Uint32Value(), &r, &e))
      throw NativeError(env, e);
    Napi::Object o = Napi::Object::New(env);
    o.Set("buckets", r.buckets);
    o.Set("nodes", (double)r.nodes);
    o.Set("longest", r.longest);
    o.Set("rewalked", r.rewalked);
    o.Set("inconsistent", r.inconsistent);
    o.Set("runs", r.runs);
    o.Set("threads", r.threads);
    o.Set("censusEntries", (double)r.census_entries);
    o.Set("maxRunMs", (double)r.max_run_ns / 1e6);
    o.Set("cpuMs", (double)r.cpu_ns / 1e6);
    o.Set("nfConnBytes", r.nf_conn_bytes);
    o.Set("directLoads", Napi::Boolean::New(env, r.direct_loads != 0));
    size_t last = 0;
    for (size_t i = 0; i < sizeof(r.hist) / sizeof(r.hist[0]); i++)
      if (r.hist[i]) last = i;
    Napi::Array h = Napi::Array::New(env, sizeof(r.hist) / sizeof(r.hist[0]));
    for (size_t i = 0; i < sizeof(r.hist) / sizeof(r.hist[0]); i++) h.Set(i, (double)r.hist[i]);
    o.Set("hist", h);
    o.Set("lastNonEmpty", (double)last);
    return o;
  }

  // forgetPoke(): delete the entry capture()'s datagram made
  Napi::Value ForgetPoke(const Napi::CallbackInfo &info) {
    ctop_err e{};
    if (ctop_walk_forget_poke(Get(info.Env()), &e)) throw NativeError(info.Env(), e);
    return info.Env().Undefined();
  }

  // readCensus(top) -> [{netns, census}] for every namespace the walk counted
  Napi::Value ReadCensus(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) throw ArgError(env, "readCensus(top) needs a number");
    uint32_t top = info[0].As<Napi::Number>().Uint32Value();
    ctop_walk_census *arr = nullptr;
    size_t n = 0;
    ctop_err e{};
    if (ctop_walk_read_census(Get(env), &arr, &n, &e)) throw NativeError(env, e);
    Napi::Array out = Napi::Array::New(env, n);
    for (size_t i = 0; i < n; i++) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("netns", arr[i].netns);
      o.Set("census", CensusToJs(env, arr[i].c, top));
      out.Set(i, o);
    }
    ctop_walk_census_free(arr, n);
    return out;
  }

};

Napi::Object Layout(Napi::Env env) {
  Napi::Object l = Napi::Object::New(env);
  l.Set("portRecSize", (uint32_t)sizeof(ctop_port_rec));
  l.Set("tupleRecSize", (uint32_t)sizeof(ctop_tuple_rec));
  l.Set("portRolesOffset", (uint32_t)(offsetof(ctop_port_rec, counts) + offsetof(ctop_counts, inserts_by_role)));
  l.Set("portDropsOffset", (uint32_t)(offsetof(ctop_port_rec, counts) + offsetof(ctop_counts, drops)));
  l.Set("roleCount", (uint32_t)CTOP_ROLE_COUNT);
  l.Set("tupleCountsOffset", (uint32_t)offsetof(ctop_tuple_rec, counts));
  l.Set("tupleSaddrOffset", (uint32_t)offsetof(ctop_tuple_key, saddr));
  l.Set("tupleDaddrOffset", (uint32_t)offsetof(ctop_tuple_key, daddr));
  l.Set("totalsCount", (uint32_t)CTOP_TOTAL_COUNT);
  l.Set("eventRecSize", (uint32_t)sizeof(ctop_event_rec));
  l.Set("eventsOffset", (uint32_t)offsetof(ctop_event_rec, events));
  return l;
}

// btfStructSize(name): sizeof(struct name) in the running kernel, from its BTF.
Napi::Value BtfStructSize(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw ArgError(env, "btfStructSize(name) needs a string");
  uint32_t size = 0;
  ctop_err e{};
  if (ctop_btf_struct(info[0].As<Napi::String>().Utf8Value().c_str(), nullptr, &size, &e)) throw NativeError(env, e);
  return Napi::Number::New(env, size);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("btfStructSize", Napi::Function::New(env, BtfStructSize));
  exports.Set("Probe", Probe::Init(env));
  Napi::Function netns = Netns::Init(env);
  AddonData *data = new AddonData();
  data->netns = Napi::Persistent(netns);
  env.SetInstanceData(data);
  exports.Set("Netns", netns);
  Napi::Array tiers = Napi::Array::New(env, CTOP_TIER_COUNT);
  for (int t = 0; t < CTOP_TIER_COUNT; t++) tiers.Set(t, ctop_tier_name(t));
  exports.Set("tiers", tiers);
  Napi::Function walkerStart = WalkerStart::Init(env);
  data->walkerStart = Napi::Persistent(walkerStart);
  exports.Set("WalkerStart", walkerStart);
  exports.Set("Walker", Walker::Init(env));
  exports.Set("layout", Layout(env));
  long page = sysconf(_SC_PAGESIZE);
  exports.Set("pageBytes", (double)(page > 0 ? page : 4096));
  Napi::Object defaults = Napi::Object::New(env);
  defaults.Set("maxPorts", (uint32_t)CTOP_DEFAULT_MAX_PORTS);
  defaults.Set("maxTuples", (uint32_t)CTOP_DEFAULT_MAX_TUPLES);
  defaults.Set("maxDropTuples", (uint32_t)CTOP_DEFAULT_MAX_DROP_TUPLES);
  exports.Set("mapDefaults", defaults);
  return exports;
}

}  // namespace

NODE_API_MODULE(ctop, Init)
