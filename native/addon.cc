// SPDX-License-Identifier: GPL-2.0
// Thin N-API layer over native/core: argument checks, object lifetimes, and one
// error shape ({code, errno, step, log}) for everything the core reports.
#include <napi.h>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/ctop_core.h"

namespace {

static_assert(sizeof(ctop_port_key) == 8, "ctop_port_key layout");
static_assert(sizeof(ctop_tuple_key) == 44, "ctop_tuple_key layout");
static_assert(sizeof(ctop_counts) == 16, "ctop_counts layout");
static_assert(sizeof(ctop_port_rec) == 24, "ctop_port_rec layout");
static_assert(sizeof(ctop_tuple_rec) == 64, "ctop_tuple_rec layout");
static_assert(sizeof(ctop_port_events) == 40, "ctop_port_events layout");
static_assert(sizeof(ctop_event_rec) == 48, "ctop_event_rec layout");

Napi::Error NativeError(Napi::Env env, const ctop_err &e) {
  Napi::Error err = Napi::Error::New(env, e.msg);
  err.Set("code", Napi::String::New(env, "ECTOP_NATIVE"));
  err.Set("errno", Napi::Number::New(env, e.err));
  err.Set("step", Napi::String::New(env, e.step));
  err.Set("log", Napi::String::New(env, ctop_libbpf_log()));
  return err;
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

// ---- Probe -----------------------------------------------------------------
class Probe : public Napi::ObjectWrap<Probe> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Probe",
                       {
                           InstanceMethod("attachDrops", &Probe::AttachDrops),
                           InstanceMethod("seedDrops", &Probe::SeedDrops),
                           InstanceMethod("nfProgFd", &Probe::NfProgFd),
                           InstanceMethod("readPorts", &Probe::ReadPorts),
                           InstanceMethod("readTuples", &Probe::ReadTuples),
                           InstanceMethod("readTotals", &Probe::ReadTotals),
                           InstanceMethod("capacity", &Probe::Capacity),
                           InstanceMethod("testRunNf", &Probe::TestRunNf),
                           InstanceMethod("ncpus", &Probe::Ncpus),
                           InstanceMethod("tier", &Probe::Tier),
                           InstanceMethod("readEvents", &Probe::ReadEvents),
                           InstanceMethod("close", &Probe::Close),
                       });
  }

  explicit Probe(const Napi::CallbackInfo &info) : Napi::ObjectWrap<Probe>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) throw ArgError(env, "Probe(options) needs an options object");
    Napi::Object o = info[0].As<Napi::Object>();
    ctop_probe_opts opts{};
    opts.max_ports = OptU32(o, "maxPorts", 8192);
    opts.max_tuples = OptU32(o, "maxTuples", 16384);
    opts.max_drop_tuples = OptU32(o, "maxDropTuples", 4096);
    opts.target_netns = OptU32(o, "targetNetns", 0);
    // tier: "fentry" | "kprobe" | "netfilter" (the caller walks the fallback order)
    if (!o.Has("tier") || !o.Get("tier").IsString()) throw ArgError(env, "tier must be fentry, kprobe or netfilter");
    std::string tier = o.Get("tier").As<Napi::String>().Utf8Value();
    opts.tier = -1;
    for (int t = CTOP_TIER_FENTRY; t <= CTOP_TIER_NETFILTER; t++)
      if (tier == ctop_tier_name(t)) opts.tier = t;
    if (opts.tier < 0) throw ArgError(env, "tier must be fentry, kprobe or netfilter, not " + tier);
    ctop_err e{};
    if (ctop_probe_open_load(&opts, &p_, &e)) throw NativeError(env, e);
  }

  ~Probe() override { ctop_probe_destroy(p_); }

 private:
  ctop_probe *p_ = nullptr;

  ctop_probe *Get(Napi::Env env) {
    if (!p_) throw ArgError(env, "the probe is closed");
    return p_;
  }

  Napi::Value AttachDrops(const Napi::CallbackInfo &info) {
    ctop_err e{};
    if (ctop_probe_attach_drops(Get(info.Env()), &e)) throw NativeError(info.Env(), e);
    return info.Env().Undefined();
  }

  // seedDrops(netnsInode, perCpuDrops: number[])
  Napi::Value SeedDrops(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsArray())
      throw ArgError(env, "seedDrops(netns, perCpu[]) needs a number and an array");
    uint32_t netns = info[0].As<Napi::Number>().Uint32Value();
    Napi::Array arr = info[1].As<Napi::Array>();
    uint32_t n = arr.Length();
    uint32_t *vals = static_cast<uint32_t *>(calloc(n ? n : 1, sizeof(uint32_t)));
    for (uint32_t i = 0; i < n; i++) vals[i] = arr.Get(i).As<Napi::Number>().Uint32Value();
    ctop_err e{};
    int rc = ctop_probe_seed_drops(Get(env), netns, vals, (int)n, &e);
    free(vals);
    if (rc) throw NativeError(env, e);
    return env.Undefined();
  }

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

  // readTuples(drops: boolean): the insert map, or with true the drop map.
  Napi::Value ReadTuples(const Napi::CallbackInfo &info) {
    ctop_tuple_rec *recs = nullptr;
    size_t n = 0;
    ctop_err e{};
    int drops = info.Length() > 0 && info[0].ToBoolean().Value() ? 1 : 0;
    if (ctop_probe_read_tuples(Get(info.Env()), drops, &recs, &n, &e)) throw NativeError(info.Env(), e);
    Napi::Buffer<uint8_t> b = Napi::Buffer<uint8_t>::Copy(info.Env(), reinterpret_cast<uint8_t *>(recs),
                                                          n * sizeof(ctop_tuple_rec));
    free(recs);
    return b;
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

  Napi::Value Tier(const Napi::CallbackInfo &info) {
    return Napi::String::New(info.Env(), ctop_tier_name(ctop_probe_tier(Get(info.Env()))));
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

  Napi::Value Ncpus(const Napi::CallbackInfo &info) {
    return Napi::Number::New(info.Env(), ctop_probe_ncpus(Get(info.Env())));
  }

  Napi::Value Close(const Napi::CallbackInfo &info) {
    ctop_probe_destroy(p_);
    p_ = nullptr;
    return info.Env().Undefined();
  }
};

// ---- Netns -------------------------------------------------------------------
class Netns : public Napi::ObjectWrap<Netns> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Netns",
                       {
                           InstanceMethod("inode", &Netns::Inode),
                           InstanceMethod("links", &Netns::Links),
                           InstanceMethod("cpuStats", &Netns::CpuStats),
                           InstanceMethod("table", &Netns::Table),
                           InstanceMethod("close", &Netns::Close),
                       });
  }

  // new Netns(path, nfProgFd): nfProgFd < 0 opens the ctnetlink socket only.
  explicit Netns(const Napi::CallbackInfo &info) : Napi::ObjectWrap<Netns>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber())
      throw ArgError(env, "Netns(path, progFd) needs a string and a number");
    std::string path = info[0].As<Napi::String>().Utf8Value();
    int fd = info[1].As<Napi::Number>().Int32Value();
    ctop_err e{};
    if (ctop_netns_open(path.c_str(), fd, &ns_, &e)) throw NativeError(env, e);
  }

  ~Netns() override { ctop_netns_close(ns_); }

 private:
  ctop_netns *ns_ = nullptr;

  ctop_netns *Get(Napi::Env env) {
    if (!ns_) throw ArgError(env, "the namespace handle is closed");
    return ns_;
  }

  Napi::Value Inode(const Napi::CallbackInfo &info) {
    return Napi::Number::New(info.Env(), ctop_netns_inum(Get(info.Env())));
  }

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

  Napi::Value Close(const Napi::CallbackInfo &info) {
    ctop_netns_close(ns_);
    ns_ = nullptr;
    return info.Env().Undefined();
  }
};

Napi::Object Layout(Napi::Env env) {
  Napi::Object l = Napi::Object::New(env);
  l.Set("portRecSize", (uint32_t)sizeof(ctop_port_rec));
  l.Set("tupleRecSize", (uint32_t)sizeof(ctop_tuple_rec));
  l.Set("portCountsOffset", (uint32_t)offsetof(ctop_port_rec, counts));
  l.Set("tupleCountsOffset", (uint32_t)offsetof(ctop_tuple_rec, counts));
  l.Set("tupleSaddrOffset", (uint32_t)offsetof(ctop_tuple_key, saddr));
  l.Set("tupleDaddrOffset", (uint32_t)offsetof(ctop_tuple_key, daddr));
  l.Set("totalsCount", (uint32_t)CTOP_TOTAL_COUNT);
  l.Set("eventRecSize", (uint32_t)sizeof(ctop_event_rec));
  l.Set("eventsOffset", (uint32_t)offsetof(ctop_event_rec, events));
  return l;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Probe", Probe::Init(env));
  exports.Set("Netns", Netns::Init(env));
  exports.Set("layout", Layout(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(ctop, Init)
