import Foundation
import Support
import VCS

/// A kernel to build from source: a revision of a git tree, optionally with
/// a patch series on top, configured from fragments in `guest/configs`.
public struct SourceKernelRequest: Sendable {
    /// Path of any kernel git repository (a clone, a bare repository, or one
    /// made by scripts/kernel-source). It is only read, never checked out.
    public var tree: String
    /// Anything `git rev-parse` understands: a tag, a branch, a commit id.
    public var revision: String
    /// A directory of `git format-patch` files or a `b4 am` mbox.
    public var series: String?
    /// Fragment names besides `base`, e.g. `["smmuv3", "trace"]`.
    public var fragments: [String]
    /// Skips the cache lookup and runs make anyway (benchmarks, a suspect
    /// cache entry). The result still replaces the cache entry.
    public var rebuild: Bool

    public init(tree: String, revision: String, series: String? = nil, fragments: [String] = [],
                rebuild: Bool = false) {
        self.tree = tree
        self.revision = revision
        self.series = series
        self.fragments = fragments
        self.rebuild = rebuild
    }

    public init(spec: KernelSpec, series: String? = nil, fragments: [String] = []) throws {
        guard case .git(let tree, let revision) = spec else {
            throw HarnessError.badInput(spec.description, "only git:<tree>@<rev> kernels are built from source")
        }
        self.init(tree: tree, revision: revision, series: series, fragments: fragments)
    }

    public var description: String { "git:\(tree)@\(revision)" }
}

/// A built kernel and everything needed to say which kernel it is.
public struct KernelBuild: Sendable, Codable, Equatable {
    public var artifacts: KernelArtifacts
    public var tree: String
    public var revision: String
    /// The commit the series was applied to.
    public var baseCommit: String
    /// The commit that was built (equals `baseCommit` without a series).
    public var builtCommit: String
    public var patches: [SeriesPatch]
    /// KCIDB patchset hash; empty without a series.
    public var patchsetHash: String
    public var configFragments: [String]
    public var configHash: String
    public var toolchain: String
    /// The content address of this build in the cache.
    public var cacheKey: String
    /// True when the kernel came out of the cache and nothing was compiled.
    public var cacheHit: Bool
    public var buildLog: String
    /// Seconds per phase (`patch`, `checkout`, `config`, `compile`, ...).
    public var timings: [String: Double]
    /// Objects make compiled or linked; 0 for a no-op or a cache hit.
    public var objectsBuilt: Int
    /// make's `O=` directory, for building out-of-tree modules against this
    /// kernel (`make -C <dir> M=...`). Shared by every revision built from
    /// the same tree and config, so it matches this build only until the
    /// next one.
    public var objectDirectory: String?
    /// With a `# kharness-gcov:` fragment: the entry's `coverage/` directory, holding
    /// each profiled object's `.gcno` and its source under their tree paths
    /// (`drivers/iommu/iommu-sva.{gcno,c}`), so the guest's counters can be read
    /// after the object directory moved on to another revision.
    public var coverageDirectory: String?

    public init(artifacts: KernelArtifacts, tree: String, revision: String, baseCommit: String, builtCommit: String,
                patches: [SeriesPatch] = [], patchsetHash: String = "", configFragments: [String] = [],
                configHash: String = "", toolchain: String = "", cacheKey: String = "", cacheHit: Bool = false,
                buildLog: String = "", timings: [String: Double] = [:], objectsBuilt: Int = 0,
                objectDirectory: String? = nil, coverageDirectory: String? = nil) {
        self.artifacts = artifacts
        self.tree = tree
        self.revision = revision
        self.baseCommit = baseCommit
        self.builtCommit = builtCommit
        self.patches = patches
        self.patchsetHash = patchsetHash
        self.configFragments = configFragments
        self.configHash = configHash
        self.toolchain = toolchain
        self.cacheKey = cacheKey
        self.cacheHit = cacheHit
        self.buildLog = buildLog
        self.timings = timings
        self.objectsBuilt = objectsBuilt
        self.objectDirectory = objectDirectory
        self.coverageDirectory = coverageDirectory
    }
}

/// Builds kernels from git trees into the content-addressed cache.
///
/// Layout under the cache root:
/// - `kernel-repos/<tree>.git`: a bare `--shared` clone of the user's tree,
///   so patched commits and worktrees never touch the user's repository;
/// - `kernel-work/<tree>-<config>/{src,obj}`: one worktree and one object
///   directory per (tree, config), reused so the next revision builds
///   incrementally;
/// - `kernel-builds/<key>/`: Image, System.map, vmlinux, config, modules,
///   build.log and build.json, keyed by (commit, series, config, toolchain).
public struct KernelBuilder: Sendable {
    public var cache: CacheDirectory
    public var configDirectory: String
    public var progress: @Sendable (BuildProgress) -> Void
    /// Bytes the kernel builds and work trees may occupy before the least
    /// recently used are evicted. `$KHARNESS_KERNEL_CACHE_GB`, default 40.
    public var sizeLimit: Int64
    public var jobs: Int

    static let arch = "arm64"
    static let crossCompile = "aarch64-linux-gnu-"
    /// Bumped when the layout or the build recipe changes, so old entries miss.
    static let recipeVersion = "1"

    public init(cache: CacheDirectory, configDirectory: String,
                progress: @escaping @Sendable (BuildProgress) -> Void = { _ in }) {
        self.cache = cache
        self.configDirectory = configDirectory
        self.progress = progress
        let gigabytes = ProcessInfo.processInfo.environment["KHARNESS_KERNEL_CACHE_GB"].flatMap(Int64.init) ?? 40
        self.sizeLimit = gigabytes << 30
        self.jobs = ProcessInfo.processInfo.activeProcessorCount
    }

    /// Builds (or finds in the cache) the requested kernel. Bad input (tree,
    /// revision, series, fragment, an option the tree cannot set) throws
    /// `HarnessError.badInput`; a compiler or linker error throws
    /// `KernelBuildFailure`. `logPath` receives the full build log.
    ///
    /// The stages, in order: resolve the request to the values that name the
    /// build (its cache key among them), look the key up, then, holding the
    /// (tree, config) work directory's lock, prepare the work tree, configure,
    /// compile and store the entry; eviction runs after the lock is released.
    /// Each stage takes values and returns values; the clock threads through
    /// them so `timings` keeps the phases it always had.
    public func build(_ request: SourceKernelRequest, logPath: String? = nil) async throws -> KernelBuild {
        var clock = BuildClock(progress: progress)
        clock.enter(.cacheLookup)
        let resolved = try await resolve(request)
        if !request.rebuild, let cached = cacheHit(resolved, logPath: logPath, clock: &clock) { return cached }
        clock.finish("cache")

        let work = try await prepareWorkTree(resolved, logPath: logPath, clock: &clock)
        defer { work.lock.unlock() }
        let config = try await checkOutAndConfigure(work.builtCommit, clone: work.clone, make: work.make,
                                                    fragments: resolved.fragments, toolchain: resolved.toolchain,
                                                    input: resolved.request.description, clock: &clock)
        let compiled = try await compile(work.make, config: config, key: resolved.key, clock: &clock)
        guard compiled.status == 0 else { throw failure(of: resolved, in: work.make) }
        let result = try await store(resolved, work: work, config: config, objectsBuilt: compiled.objects, clock: &clock)
        // Eviction takes each tree's lock (this one's too) to remove an object
        // directory, and another build of this tree need not wait for its du.
        work.lock.unlock()
        try? await evict(keeping: [resolved.entry, work.make.objects])
        clock.enter(.done, objects: result.objectsBuilt)
        return result
    }

    /// A request resolved to what names its build. The cache key is a function
    /// of these values alone (``cacheKey(baseCommit:patchsetHash:configHash:toolchain:)``),
    /// so a lookup needs no work tree, and no lock.
    struct ResolvedBuild {
        var request: SourceKernelRequest
        /// The tree's absolute path: work directories are per path (``treeKey(_:)``).
        var tree: String
        var treeKey: String
        /// The revision resolved to a commit: the series' base.
        var baseCommit: String
        var series: PatchSeries?
        var fragments: ConfigFragments
        var toolchain: String
        /// `kernel-builds/` in the cache.
        var buildsRoot: String
        var key: String

        /// KCIDB's patchset hash; empty without a series.
        var patchsetHash: String { series?.patchsetHash ?? "" }
        /// The cache entry the key names, whether it exists or not.
        var entry: String { buildsRoot + "/" + key }
    }

    /// The resolve stage: checks the tree, resolves the revision, reads the
    /// series and fragments, asks the toolchain its version. Every bad input
    /// is found here, before a lock, a clone or a make.
    func resolve(_ request: SourceKernelRequest) async throws -> ResolvedBuild {
        let tree = Files.absolute(request.tree)
        guard Files.isDirectory(tree) else {
            throw HarnessError.badInput(request.description, "tree '\(request.tree)' is not a directory")
        }
        let baseCommit: String
        do {
            baseCommit = try await GitRepository.open(tree).resolve(request.revision)
        } catch GitError.notARepository {
            throw HarnessError.badInput(request.description, "tree '\(request.tree)' is not a git repository")
        } catch GitError.unknownRevision {
            throw HarnessError.badInput(request.description, "unknown revision '\(request.revision)' in \(request.tree)")
        }
        let series = try request.series.map { try PatchSeries(path: $0) }
        let fragments = try ConfigFragments(directory: configDirectory, names: request.fragments)
        try fragments.validateGcovObjects()
        let toolchain = try await Self.toolchainVersion()
        let key = Self.cacheKey(baseCommit: baseCommit, patchsetHash: series?.patchsetHash ?? "",
                                configHash: fragments.hash, toolchain: toolchain)
        return ResolvedBuild(request: request, tree: tree, treeKey: Self.treeKey(tree), baseCommit: baseCommit,
                             series: series, fragments: fragments, toolchain: toolchain,
                             buildsRoot: try cache.directory("kernel-builds"), key: key)
    }

    /// The content address of a build: (recipe, base commit, patchset, config,
    /// toolchain). The text hashed is fixed: changing it changes every key, and
    /// every cached kernel (in CI too) is built again; bump ``recipeVersion``
    /// when that is what is meant.
    static func cacheKey(baseCommit: String, patchsetHash: String, configHash: String, toolchain: String) -> String {
        Digest.sha256("""
            recipe \(recipeVersion)
            commit \(baseCommit)
            patchset \(patchsetHash)
            config \(configHash)
            toolchain \(toolchain)
            """)
    }

    /// The cache lookup stage: the stored build, as this request sees it (its
    /// tree path, its revision's name, the object directory of this checkout,
    /// nothing compiled), or nil when the key has no complete entry.
    func cacheHit(_ resolved: ResolvedBuild, logPath: String?, clock: inout BuildClock) -> KernelBuild? {
        guard var cached = Self.loadEntry(resolved.entry) else { return nil }
        Self.markUsed(resolved.entry)
        cached.cacheHit = true
        cached.tree = resolved.tree
        // The entry may come from another checkout of the same commit.
        cached.objectDirectory = objectDirectory(treeKey: resolved.treeKey, configHash: resolved.fragments.hash)
        cached.revision = resolved.request.revision
        cached.objectsBuilt = 0
        clock.finish("cache")
        cached.timings = clock.timings
        if let logPath { try? Self.copy(cached.buildLog, to: logPath) }
        clock.enter(.done)
        return cached
    }

    /// The (tree, config) work directory, locked for one build, with the commit to build in it.
    struct WorkTree {
        /// Held from here until the entry is stored; the build releases it.
        var lock: FileLock
        /// The tree's bare clone in the cache.
        var clone: String
        /// The base commit, or the commit the series made on top of it.
        var builtCommit: String
        /// make for the worktree and its object directory, logging into a fresh log.
        var make: MakeInvocation
    }

    /// The work tree stage: locks the work directory, makes (or reuses) the
    /// shared clone, reclaims what killed builders left, applies the series,
    /// and starts a fresh log. The lock is released if any of that fails.
    func prepareWorkTree(_ resolved: ResolvedBuild, logPath: String?, clock: inout BuildClock) async throws -> WorkTree {
        let workDir = try cache.directory("kernel-work", resolved.treeKey)
        let lock = try await FileLock.acquire(path: workDir + "/.lock")
        do {
            let clone = try await sharedClone(of: resolved.tree, key: resolved.treeKey)
            await reclaimStale(workDir: workDir, clone: clone)
            var builtCommit = resolved.baseCommit
            if let series = resolved.series {
                clock.enter(.patching)
                builtCommit = try await apply(series, onto: resolved.baseCommit, clone: clone, workDir: workDir,
                                              key: resolved.key)
                clock.finish("patch")
            }
            let obj = objectDirectory(treeKey: resolved.treeKey, configHash: resolved.fragments.hash)
            try Files.createDirectory(obj)
            let make = try makeInvocation(workDir: workDir, objects: obj, freshLog: logPath ?? obj + "/kharness-build.log",
                                          fragments: resolved.fragments)
            return WorkTree(lock: lock, clone: clone, builtCommit: builtCommit, make: make)
        } catch {
            lock.unlock()
            throw error
        }
    }

    /// The configure stage: moves the (tree, config) worktree to `commit` and
    /// configures it; returns the final .config. The object directory's
    /// `.kharness-built` stamp goes first: until ``compile(_:config:key:clock:)``
    /// succeeds it holds no build. The caller holds the work directory's lock.
    func checkOutAndConfigure(_ commit: String, clone: String, make: MakeInvocation, fragments: ConfigFragments,
                              toolchain: String, input: String, clock: inout BuildClock) async throws -> String {
        try? FileManager.default.removeItem(atPath: make.objects + "/" + Self.builtStamp)
        clock.enter(.checkout)
        try await checkout(commit, clone: clone, into: make.source)
        clock.finish("checkout")
        clock.enter(.configuring)
        let config = try await configure(fragments: fragments, make: make, builtCommit: commit,
                                         clone: clone, toolchain: toolchain, input: input)
        clock.finish("config")
        return config
    }

    /// The compile stage: `Image` (and `modules` when configured) in the
    /// shared object directory, which then holds the build `key` (its
    /// `.kharness-built` stamp) if make succeeded. Returns make's status and
    /// the objects it built.
    func compile(_ make: MakeInvocation, config: String, key: String,
                 clock: inout BuildClock) async throws -> (status: Int32, objects: Int) {
        clock.enter(.compiling)
        let modules = KernelConfigFile.values(config)["CONFIG_MODULES"] == "y"
        let objects = Counter()
        let (start, report) = (clock.start, clock.progress)
        let status = try await make.run(["Image"] + (modules ? ["modules"] : [])) { count in
            objects.value = count
            report(BuildProgress(phase: .compiling, objectsBuilt: count, elapsed: Self.seconds(since: start)))
        }
        if status == 0 { try Files.writeAtomically(key, to: make.objects + "/" + Self.builtStamp) }
        clock.finish("compile")
        return (status, objects.value)
    }

    /// What a failed make means, as the error the build throws. A cache
    /// removed under the build, a log that is gone with it or a full disk is
    /// not a broken kernel: ERROR, not BUILD_FAIL. Otherwise BUILD_FAIL,
    /// quoting the log's first compiler or linker error.
    func failure(of resolved: ResolvedBuild, in make: MakeInvocation) -> any Error {
        guard Files.isDirectory(make.objects), Files.isDirectory(make.source) else {
            return HarnessError.infrastructure(make.objects, "the build's work tree or object directory disappeared during the build")
        }
        let text: String
        do {
            text = String(decoding: try Data(contentsOf: URL(fileURLWithPath: make.log)), as: UTF8.self)
        } catch {
            return HarnessError(error).naming(make.log)
        }
        if let fault = KernelBuildFailure.machineFault(inLog: text) {
            return HarnessError.infrastructure(make.log, fault)
        }
        return KernelBuildFailure(kernel: resolved.request.description + (resolved.series.map { " + \($0.source)" } ?? ""),
                                  reason: KernelBuildFailure.firstError(inLog: text), logPath: make.log)
    }

    /// The store stage: installs the modules and copies the artifacts (with a
    /// gcov fragment, the coverage notes) into a staging directory, writes
    /// build.json there and renames it over the entry, so a reader sees a
    /// whole entry or none. build.json's `timings` end at the copy; the
    /// returned build's include the rename.
    func store(_ resolved: ResolvedBuild, work: WorkTree, config: String, objectsBuilt: Int,
               clock: inout BuildClock) async throws -> KernelBuild {
        let (make, entry, key) = (work.make, resolved.entry, resolved.key)
        let obj = make.objects
        let modules = KernelConfigFile.values(config)["CONFIG_MODULES"] == "y"

        let staging = resolved.buildsRoot + "/.tmp-\(key)-\(getpid())"
        try? FileManager.default.removeItem(atPath: staging)
        try Files.createDirectory(staging)
        defer { try? FileManager.default.removeItem(atPath: staging) }
        let release = (try? String(contentsOfFile: obj + "/include/config/kernel.release", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        var modulesDirectory: String?
        if modules {
            clock.enter(.installing)
            let status = try await make.run(["INSTALL_MOD_PATH=\(staging)/modules", "INSTALL_MOD_STRIP=1",
                                             "DEPMOD=/sbin/depmod", "modules_install"]) { _ in }
            guard status == 0 else {
                throw HarnessError.infrastructure(make.log, "make modules_install failed")
            }
            if let release { modulesDirectory = entry + "/modules/lib/modules/" + release }
            clock.finish("install")
        }

        clock.enter(.storing)
        for (from, to) in [("arch/arm64/boot/Image", "Image"), ("System.map", "System.map"),
                           ("vmlinux", "vmlinux"), (".config", "config")] {
            try Self.copy(obj + "/" + from, to: staging + "/" + to)
        }
        try Self.copy(make.log, to: staging + "/build.log")
        var coverageDirectory: String?
        if !resolved.fragments.gcovObjects.isEmpty {
            try Self.keepCoverageNotes(resolved.fragments.gcovObjects, make: make, in: staging + "/coverage")
            coverageDirectory = entry + "/coverage"
        }
        var identity = "git:\(resolved.tree)@\(resolved.baseCommit)"
        if !resolved.patchsetHash.isEmpty { identity += "+patchset:\(resolved.patchsetHash.prefix(16))" }
        identity += " config:" + resolved.fragments.names.joined(separator: ",")
        let artifacts = KernelArtifacts(
            image: entry + "/Image", modulesDirectory: modulesDirectory, config: entry + "/config",
            release: release, systemMap: entry + "/System.map", vmlinux: entry + "/vmlinux",
            identity: identity)
        clock.finish("store")
        var result = KernelBuild(
            artifacts: artifacts, tree: resolved.tree, revision: resolved.request.revision,
            baseCommit: resolved.baseCommit, builtCommit: work.builtCommit, patches: resolved.series?.patches ?? [],
            patchsetHash: resolved.patchsetHash, configFragments: resolved.fragments.names,
            configHash: resolved.fragments.hash, toolchain: resolved.toolchain, cacheKey: key, cacheHit: false,
            buildLog: entry + "/build.log", timings: clock.timings, objectsBuilt: objectsBuilt,
            objectDirectory: obj, coverageDirectory: coverageDirectory)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try Files.writeAtomically(try encoder.encode(result), to: staging + "/build.json")
        try? FileManager.default.removeItem(atPath: entry)
        guard rename(staging, entry) == 0 else {
            throw HarnessError.infrastructure(entry, "cannot move the build into the cache: \(String(cString: strerror(errno)))")
        }
        Self.markUsed(entry)
        Self.markUsed(obj)
        clock.finish("store")
        result.timings = clock.timings
        return result
    }

    /// make in the work directory's worktree and `objects`, logging into
    /// `freshLog`, which starts empty.
    private func makeInvocation(workDir: String, objects: String, freshLog log: String,
                                fragments: ConfigFragments) throws -> MakeInvocation {
        try? FileManager.default.removeItem(atPath: log)
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        return MakeInvocation(source: workDir + "/src", objects: objects, jobs: jobs, log: log,
                              ccacheBase: try cache.directory("kernel-work"), gcovObjects: fragments.gcovObjects)
    }

    /// Each profiled object's `.gcno` and source into `directory` under their tree paths.
    /// An object this tree and config do not build (io-pgfault.c before 6.7 without
    /// IOPF, say) has no `.gcno` and is left out; none at all is a failed setup.
    static func keepCoverageNotes(_ objects: [String], make: MakeInvocation, in directory: String) throws {
        var kept = 0
        for object in objects {
            let stem = String(object.dropLast(2))
            guard Files.exists(make.objects + "/" + stem + ".gcno") else { continue }
            try Files.createDirectory(directory + "/" + (stem as NSString).deletingLastPathComponent)
            try copy(make.objects + "/" + stem + ".gcno", to: directory + "/" + stem + ".gcno")
            try copy(make.source + "/" + stem + ".c", to: directory + "/" + stem + ".c")
            kept += 1
        }
        guard kept > 0 else {
            throw HarnessError.infrastructure(make.objects, "no .gcno for any of \(objects.joined(separator: " ")): "
                                              + "the build did not profile them (is CONFIG_GCOV_KERNEL set?)")
        }
    }

    /// Names the build an object directory holds, for `withObjectDirectory`.
    static let builtStamp = ".kharness-built"

    /// Work directories are per tree path: one worktree and one shared clone each.
    static func treeKey(_ tree: String) -> String { String(Digest.sha256(tree).prefix(16)) }

    /// make's `O=` directory for (tree, config), shared by all its revisions.
    func objectDirectory(treeKey: String, configHash: String) -> String {
        cache.root + "/kernel-work/" + treeKey + "/obj-" + configHash.prefix(16)
    }

    /// Runs `body` with the object directory of `build`, for building
    /// out-of-tree modules against it (`make -C <dir> M=...`). The directory
    /// is shared by every revision of the tree and config, so it may hold
    /// another revision by now (a matrix builds all its kernels first; a
    /// bisect moves on): then `build`'s commit is checked out and compiled
    /// there again, incrementally. The work directory stays locked while
    /// `body` runs, so no other build changes the objects under it.
    public func withObjectDirectory<T>(of build: KernelBuild,
                                       _ body: (String) async throws -> T) async throws -> T {
        guard build.objectDirectory != nil else {
            throw HarnessError.infrastructure(build.artifacts.identity, "no object directory: not a source build")
        }
        let treeKey = Self.treeKey(build.tree)
        let obj = objectDirectory(treeKey: treeKey, configHash: build.configHash)
        let workDir = try cache.directory("kernel-work", treeKey)
        let lock = try await FileLock.acquire(path: workDir + "/.lock")
        defer { lock.unlock() }
        let held = try? String(contentsOfFile: obj + "/" + Self.builtStamp, encoding: .utf8)
        if held != build.cacheKey {
            let fragments = try ConfigFragments(directory: configDirectory, names: build.configFragments)
            guard fragments.hash == build.configHash else {
                throw HarnessError.badInput(build.artifacts.identity,
                                            "its config fragments changed since it was built; build it again")
            }
            let toolchain = try await Self.toolchainVersion()
            guard toolchain == build.toolchain else {
                throw HarnessError.badInput(build.artifacts.identity,
                                            "the cross toolchain changed since it was built; build it again")
            }
            let clone = try await sharedClone(of: build.tree, key: treeKey)
            // A series commit lives in the clone that applied it; a cache entry
            // made from another checkout of the same base has it elsewhere.
            guard try await GitRepository(path: clone).hasCommit(build.builtCommit) else {
                throw HarnessError.badInput(build.artifacts.identity,
                                            "commit \(build.builtCommit.prefix(12)) was built from another checkout of this tree; rebuild it here with kharness build --rebuild")
            }
            try Files.createDirectory(obj)  // evicted since, perhaps
            let log = obj + "/kharness-rebuild.log"
            let make = try makeInvocation(workDir: workDir, objects: obj, freshLog: log, fragments: fragments)
            // The same configure and compile stages as `build`, reporting to no one.
            var clock = BuildClock(progress: { _ in })
            let config = try await checkOutAndConfigure(build.builtCommit, clone: clone, make: make, fragments: fragments,
                                                        toolchain: toolchain, input: build.artifacts.identity,
                                                        clock: &clock)
            let (status, _) = try await compile(make, config: config, key: build.cacheKey, clock: &clock)
            guard status == 0 else {
                throw HarnessError.infrastructure(log, "rebuilding \(build.builtCommit.prefix(12)) in its object directory failed")
            }
        }
        Self.markUsed(obj)
        return try await body(obj)
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let duration = ContinuousClock.now - start
        return Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// What a builder killed outright left behind: `git am` worktrees (and their
    /// mboxes) in the work directory, whose registration the clone then forgets,
    /// and staging directories of builds and clones. Only entries of processes
    /// that are gone; flock'd `.lock` files need nothing (the kernel releases a
    /// dead process's lock, and the empty file is reused).
    func reclaimStale(workDir: String, clone: String) async {
        let worktrees = Files.reclaimStale(in: workDir, prefix: "am-", pidField: 0)
        if !worktrees.isEmpty {
            await GitRepository(path: clone).pruneWorktrees()
            log.info("removed stale patch worktrees", metadata: ["paths": "\(worktrees)"])
        }
        Files.reclaimStale(in: cache.root + "/kernel-builds", prefix: ".tmp-", pidField: 1)
        Files.reclaimStale(in: cache.root + "/kernel-repos", prefix: ".tmp-", pidField: 1)
    }

    // MARK: - Git

    /// The tree's bare clone in the cache (``GitRepository/sharedClone(of:at:executable:)``,
    /// which also settles a race with another process making it): ours to add
    /// commits, refs and worktrees to, while the user's repository stays untouched.
    func sharedClone(of tree: String, key: String) async throws -> String {
        let repos = try cache.directory("kernel-repos")
        return try await GitRepository.sharedClone(of: tree, at: repos + "/" + key + ".git").path
    }

    /// Applies the series with `git am` in a throw-away worktree that checks
    /// out only the files the series touches; returns the resulting commit.
    /// On failure the worktree is removed and the error names the patch,
    /// the file and the hunk.
    func apply(_ series: PatchSeries, onto base: String, clone: String, workDir: String,
               key: String) async throws -> String {
        let worktree = workDir + "/am-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let mbox = worktree + ".mbox"
        var text = Data()
        for patch in series.patches {
            text.append(patch.text)
            if patch.text.last != UInt8(ascii: "\n") { text.append(UInt8(ascii: "\n")) }
        }
        try Files.writeAtomically(text, to: mbox)
        defer {
            try? FileManager.default.removeItem(atPath: mbox)
        }
        let clone = GitRepository(path: clone)
        let checkout = try await clone.addWorktree(at: worktree, commit: base, checkout: false)
        do {
            var files: [String] = []
            for patch in series.patches {
                for file in patch.files where !files.contains(file) { files.append(file) }
            }
            try await checkout.sparseCheckout(files.map { "/" + Self.escapePattern($0) })
            try await checkout.resetHard(to: base)
            // The committer is fixed so the same series on the same base always
            // gives the same commit id.
            let date = try await clone.committerDate(base)
            let env = ["GIT_COMMITTER_NAME": "kharness", "GIT_COMMITTER_EMAIL": "kharness@example.invalid",
                       "GIT_COMMITTER_DATE": date]
            let am = try await checkout.am(mbox, environment: env)
            guard am.succeeded else {
                let reason = Self.explainAmFailure(am.stdout + "\n" + am.stderr, series: series)
                await clone.removeWorktree(at: worktree)
                throw HarnessError.badInput(series.source, reason)
            }
            let head = try await checkout.head()
            try await clone.updateRef("refs/kharness/\(key)", to: head)
            await clone.removeWorktree(at: worktree)
            return head
        } catch {
            await clone.removeWorktree(at: worktree)
            throw error
        }
    }

    static func escapePattern(_ path: String) -> String {
        var escaped = ""
        for character in path {
            if "*?[]\\!#".contains(character) { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }

    /// `patch 2/3 "mm: ..." does not apply: kernel/fork.c hunk #1 (@@ -10,7 +10,8 @@)`.
    static func explainAmFailure(_ output: String, series: PatchSeries) -> String {
        let lines = output.split(separator: "\n").map(String.init)
        var index: Int?
        if let line = lines.first(where: { $0.hasPrefix("Patch failed at ") }) {
            let number = line.dropFirst("Patch failed at ".count).prefix { $0.isNumber }
            index = Int(number).map { $0 - 1 }
        }
        let patch = index.flatMap { series.patches.indices.contains($0) ? series.patches[$0] : nil }
        var header = "patch"
        if let index, let patch {
            header = "patch \(index + 1)/\(series.patches.count) \"\(patch.subject)\""
        }
        if let failed = lines.first(where: { $0.hasPrefix("error: patch failed: ") }) {
            let location = String(failed.dropFirst("error: patch failed: ".count))
            if let colon = location.lastIndex(of: ":"), let line = Int(location[location.index(after: colon)...]) {
                let file = String(location[..<colon])
                let hunk = patch.flatMap { PatchSeries.hunk(in: $0, file: file, line: line) }
                    ?? "hunk at line \(line)"
                return "\(header) does not apply: \(file) \(hunk)"
            }
        }
        if let error = lines.first(where: { $0.hasPrefix("error: ") }) {
            return "\(header) does not apply: \(error.dropFirst("error: ".count))"
        }
        return "\(header) does not apply: \(lines.last ?? "git am failed")"
    }

    /// The persistent worktree of (tree, config), moved to `commit`. Only
    /// files that differ are rewritten, which keeps make incremental.
    func checkout(_ commit: String, clone: String, into src: String) async throws {
        let clone = GitRepository(path: clone)
        if Files.exists(src + "/.git") {
            if try await GitRepository(path: src).checkoutDetached(commit) { return }
            // A worktree whose metadata is gone (pruned, moved cache): recreate.
            try? FileManager.default.removeItem(atPath: src)
            await clone.pruneWorktrees()
        }
        try await clone.addWorktree(at: src, commit: commit, force: true)
    }

    // MARK: - Config

    /// Merges the fragments with the tree's merge_config.sh on top of
    /// allnoconfig, runs olddefconfig and checks every requested option.
    /// Returns the final .config text.
    func configure(fragments asked: ConfigFragments, make: MakeInvocation, builtCommit: String, clone: String,
                   toolchain: String, input: String) async throws -> String {
        let obj = make.objects
        // What the tree calls the options (the rename is a function of the tree, which
        // the stamp below and the build key already cover).
        let fragments = asked.renaming(await KconfigRename.applicable(to: asked, source: make.source))
        // Kconfig files (and the kconfig tool) decide the .config; when none
        // changed since the last configure, the existing one stands.
        let kconfigFiles = try await GitRepository(path: clone)
            .digestOfTreeEntries(at: builtCommit, matching: "/?Kconfig[^/]*$|\tscripts/kconfig/")
        let stamp = Digest.sha256("\(fragments.hash)\n\(toolchain)\n\(kconfigFiles)")
        let stampPath = obj + "/.kharness-config-stamp"
        if let existing = try? String(contentsOfFile: stampPath, encoding: .utf8), existing == stamp,
           let config = try? String(contentsOfFile: obj + "/.config", encoding: .utf8) {
            return config
        }

        let fragmentDir = obj + "/kharness-fragments"
        try? FileManager.default.removeItem(atPath: fragmentDir)
        try Files.createDirectory(fragmentDir)
        var paths: [String] = []
        for (index, fragment) in fragments.fragments.enumerated() {
            let path = fragmentDir + String(format: "/%02d-", index) + fragment.name + ".config"
            try Files.writeAtomically(fragment.text, to: path)
            paths.append(path)
        }
        // merge_config.sh -m only merges; allnoconfig with the merged file
        // as KCONFIG_ALLCONFIG is what its -n mode runs, done here with our
        // make variables so the compiler Kconfig sees is the one we build with.
        let merged = try await make.runTool(in: fragmentDir, make.source + "/scripts/kconfig/merge_config.sh",
                                            ["-m", "-O", fragmentDir] + paths)
        guard merged == 0, Files.exists(fragmentDir + "/.config") else {
            throw HarnessError.infrastructure(input, "scripts/kconfig/merge_config.sh failed (log: \(make.log))")
        }
        let candidate = ".config.kharness"
        try? FileManager.default.removeItem(atPath: obj + "/" + candidate)
        for target in ["allnoconfig", "olddefconfig"] {
            var arguments = ["KCONFIG_CONFIG=\(candidate)", target]
            if target == "allnoconfig" { arguments.insert("KCONFIG_ALLCONFIG=\(fragmentDir)/.config", at: 0) }
            let status = try await make.run(arguments) { _ in }
            guard status == 0 else {
                throw HarnessError.infrastructure(input, "make \(target) failed (log: \(make.log))")
            }
        }
        let config = try String(contentsOfFile: obj + "/" + candidate, encoding: .utf8)
        let final = KernelConfigFile.values(config)
        let explainer = KconfigExplainer(sourceTree: make.source, finalConfig: final)
        for option in fragments.requested {
            let actual = final[option.symbol] ?? "n"
            guard actual != option.value else { continue }
            let reason = await explainer.reason(symbol: option.symbol, requested: option.value, actual: actual)
            try? FileManager.default.removeItem(atPath: obj + "/" + candidate)
            let written = option.value == "n" ? "# \(option.symbol) is not set" : "\(option.symbol)=\(option.value)"
            throw HarnessError.badInput("\(option.fragment).config: \(written)",
                                        "not set in the final .config of \(input): \(reason)")
        }
        let previous = try? String(contentsOfFile: obj + "/.config", encoding: .utf8)
        if previous != config {
            guard rename(obj + "/" + candidate, obj + "/.config") == 0 else {
                throw HarnessError.infrastructure(obj + "/.config", "cannot move the new config into place")
            }
        } else {
            try? FileManager.default.removeItem(atPath: obj + "/" + candidate)
        }
        try Files.writeAtomically(stamp, to: stampPath)
        return config
    }

    // MARK: - Cache

    static func toolchainVersion() async throws -> String {
        var lines: [String] = []
        for tool in ["gcc", "ld"] {
            let result = try? await Command.run(crossCompile + tool, ["--version"])
            guard let result, result.succeeded, let first = result.stdout.split(separator: "\n").first else {
                throw HarnessError.infrastructure(crossCompile + tool, "cross toolchain not found (run scripts/setup)")
            }
            lines.append(String(first))
        }
        return lines.joined(separator: "; ")
    }

    static func loadEntry(_ entry: String) -> KernelBuild? {
        guard let data = FileManager.default.contents(atPath: entry + "/build.json"),
              let build = try? JSONDecoder().decode(KernelBuild.self, from: data),
              Files.exists(build.artifacts.image)
        else { return nil }
        return build
    }

    /// LRU order is the mtime of a `last-used` file in each entry.
    static func markUsed(_ directory: String) {
        let path = directory + "/.last-used"
        if !FileManager.default.createFile(atPath: path, contents: Data()) {
            _ = utime(path, nil)
        }
    }

    static func copy(_ from: String, to: String) throws {
        try? FileManager.default.removeItem(atPath: to)
        // A hard link when source and cache share a filesystem would tie the
        // cache entry to the next incremental build, which rewrites in place.
        try FileManager.default.copyItem(atPath: from, toPath: to)
    }

    /// Removes least recently used builds and work trees until the kernel
    /// cache fits `sizeLimit`, never the ones just used.
    func evict(keeping: [String]) async throws {
        var candidates: [(path: String, used: Date, bytes: Int64)] = []
        var directories: [String] = []
        let builds = cache.root + "/kernel-builds"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: builds)) ?? [] where !name.hasPrefix(".") {
            directories.append(builds + "/" + name)
        }
        let work = cache.root + "/kernel-work"
        for tree in (try? FileManager.default.contentsOfDirectory(atPath: work)) ?? [] {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: work + "/" + tree)) ?? []
            where name.hasPrefix("obj-") {
                directories.append(work + "/" + tree + "/" + name)
            }
        }
        for path in directories where Files.isDirectory(path) {
            let used = (try? FileManager.default.attributesOfItem(atPath: path + "/.last-used")[.modificationDate] as? Date)
                ?? .distantPast
            let du = try await Command.run("du", ["-sk", path])
            let kilobytes = Int64(du.stdout.split(separator: "\t").first ?? "0") ?? 0
            candidates.append((path, used, kilobytes * 1024))
        }
        var total = candidates.reduce(0) { $0 + $1.bytes }
        for candidate in candidates.sorted(by: { $0.used < $1.used }) where total > sizeLimit {
            if keeping.contains(candidate.path) { continue }
            if candidate.path.hasPrefix(work + "/") {
                // An object directory: only when no build holds its tree.
                let tree = URL(fileURLWithPath: candidate.path).deletingLastPathComponent().path
                guard let lock = try? FileLock(path: tree + "/.lock", wait: false) else { continue }
                try? FileManager.default.removeItem(atPath: candidate.path)
                lock.unlock()
            } else {
                try? FileManager.default.removeItem(atPath: candidate.path)
            }
            total -= candidate.bytes
        }
    }
}
/// A build's clock: the progress it reports (seconds since the request
/// started) and the seconds each phase took, which build.json keeps as
/// `timings`. A phase's time runs from the end of the one before, so the
/// phases add up to the whole build, waits for locks and clones included.
struct BuildClock {
    let start = ContinuousClock.now
    let progress: @Sendable (BuildProgress) -> Void
    private(set) var timings: [String: Double] = [:]
    private var phaseStart = 0.0

    init(progress: @escaping @Sendable (BuildProgress) -> Void) {
        self.progress = progress
    }

    var elapsed: Double { KernelBuilder.seconds(since: start) }

    func enter(_ phase: BuildProgress.Phase, objects: Int = 0) {
        progress(BuildProgress(phase: phase, objectsBuilt: objects, elapsed: elapsed))
    }

    /// Adds the time since the last phase ended to `name` (a phase may be entered twice: `store`).
    mutating func finish(_ name: String) {
        let now = elapsed
        timings[name, default: 0] += now - phaseStart
        phaseStart = now
    }
}

/// A mutable box for values written from a progress callback.
/// `@unchecked`: `stored` is read and written only with `lock` held.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var stored = 0
    var value: Int {
        get { lock.lock(); defer { lock.unlock() }; return stored }
        set { lock.lock(); stored = newValue; lock.unlock() }
    }
}

/// `make O=<obj> ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-` with ccache,
/// logging into the build log.
struct MakeInvocation {
    var source: String
    var objects: String
    var jobs: Int
    var log: String
    var ccacheBase: String
    /// Objects compiled with gcov (`ConfigFragments.gcovObjects`).
    var gcovObjects: [String] = []

    var variables: [String] {
        ["O=\(objects)", "ARCH=\(KernelBuilder.arch)", "CROSS_COMPILE=\(KernelBuilder.crossCompile)",
         "CC=ccache \(KernelBuilder.crossCompile)gcc", "HOSTCC=ccache gcc",
         // Set (even empty) so setlocalversion appends no "+" and asks git nothing.
         "LOCALVERSION="]
            // kbuild's per-object switch (scripts/Makefile.lib: GCOV_PROFILE_<stem>.o),
            // given on the command line so no Makefile of the tree is touched. It names
            // the file's stem, so it applies to every object of that name.
            + gcovObjects.map { "GCOV_PROFILE_\(URL(fileURLWithPath: $0).lastPathComponent)=y" }
    }

    var environment: [String: String] {
        ["CCACHE_BASEDIR": ccacheBase, "KBUILD_BUILD_USER": "kharness", "KBUILD_BUILD_HOST": "kharness",
         "ARCH": KernelBuilder.arch, "CROSS_COMPILE": KernelBuilder.crossCompile,
         // kbuild unexports LC_ALL, so gcc would fall back to the inherited
         // UTF-8 locale and quote with ‘’ in the error lines BUILD_FAIL quotes.
         "LC_ALL": "C", "LC_CTYPE": "C", "LANG": "C"]
    }

    func run(_ arguments: [String], onObjects: @escaping @Sendable (Int) -> Void) async throws -> Int32 {
        let command = LoggedCommand(executable: try Self.which("make"),
                                    arguments: ["-j\(jobs)"] + variables + arguments,
                                    workingDirectory: source, environment: environment, logPath: log)
        return try await command.run(onLines: onObjects)
    }

    /// Runs a script of the tree; `directory` takes its temporary files.
    func runTool(in directory: String, _ script: String, _ arguments: [String]) async throws -> Int32 {
        let command = LoggedCommand(executable: "/bin/sh", arguments: [script] + arguments,
                                    workingDirectory: directory, environment: environment, logPath: log)
        return try await command.run { _ in }
    }

    static func which(_ name: String) throws -> String {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw HarnessError.infrastructure(name, "not found in PATH (run scripts/setup)")
    }
}
