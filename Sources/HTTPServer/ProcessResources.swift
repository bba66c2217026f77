import CLinux
import Glibc
import SystemSupport

/// What the process may use of the machine: CPUs (affinity and cgroup quota) and file
/// descriptors. A container limited to 2 CPUs on a 64-core node gets
/// 2 event loops, not 64.
public enum ProcessResources {
    /// Event loops worth running: the CPUs in the affinity mask, capped by the cgroup CPU
    /// quota (rounded up), at least 1.
    public static func usableCPUCount() -> Int {
        let online = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        let affinity = Int(clinux_affinity_cpu_count())
        var count = affinity > 0 ? affinity : max(1, online)
        if let quota = cgroupCPUQuota() { count = min(count, Int(quota.rounded(.up))) }
        return max(1, count)
    }

    /// The tightest CPU quota on the path from this process's cgroup to the root, in
    /// CPUs; nil when unlimited or unknown.
    static func cgroupCPUQuota() -> Double? {
        guard let membership = readSmallFile("/proc/self/cgroup"),
              let mounts = readSmallFile("/proc/self/mountinfo", limit: 1 << 20) else { return nil }
        var quotas: [Double] = []
        for directory in cgroupDirectories(membership: membership, mountInfo: mounts) {
            if let text = readSmallFile(directory + "/cpu.max"), let quota = cpuQuota(cgroupV2Max: text) {
                quotas.append(quota)
            }
            if let quotaText = readSmallFile(directory + "/cpu.cfs_quota_us"),
               let periodText = readSmallFile(directory + "/cpu.cfs_period_us"),
               let quota = cpuQuota(cfsQuota: quotaText, period: periodText) {
                quotas.append(quota)
            }
        }
        return quotas.min()
    }

    /// The cgroup directories that can limit this process's CPU, deepest first: its own
    /// and each parent up to the mount, in the v2 hierarchy and the v1 one that has the
    /// `cpu` controller. `membership` is /proc/self/cgroup, `mountInfo` /proc/self/mountinfo
    /// (which says where each hierarchy is mounted and which of its paths the mount shows).
    static func cgroupDirectories(membership: String, mountInfo: String) -> [String] {
        // mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
        var v2: (root: String, point: String)?
        var v1CPU: (root: String, point: String)?
        for line in mountInfo.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard let dash = fields.firstIndex(of: "-"), dash >= 5, dash + 3 < fields.count else { continue }
            let mount = (root: String(fields[3]), point: String(fields[4]))
            if fields[dash + 1] == "cgroup2" {
                v2 = v2 ?? mount
            } else if fields[dash + 1] == "cgroup", fields[dash + 3].split(separator: ",").contains("cpu") {
                v1CPU = v1CPU ?? mount
            }
        }
        var directories: [String] = []
        for line in membership.split(separator: "\n") {
            // hierarchy-ID:controller-list:path
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let mount: (root: String, point: String)?
            if fields[0] == "0" && fields[1].isEmpty {
                mount = v2
            } else if fields[1].split(separator: ",").contains("cpu") {
                mount = v1CPU
            } else {
                mount = nil
            }
            guard let mount else { continue }
            var path = String(fields[2])
            if mount.root != "/" {
                guard path.hasPrefix(mount.root) else { continue }
                path = String(path.dropFirst(mount.root.count))
            }
            while true {
                let trimmed = path == "/" ? "" : path
                directories.append(mount.point + trimmed)
                guard !trimmed.isEmpty, let slash = path.lastIndex(of: "/") else { break }
                path = slash == path.startIndex ? "/" : String(path[..<slash])
            }
        }
        return directories
    }

    /// cgroup v2 `cpu.max`: `max 100000` (no limit) or `QUOTA PERIOD`.
    static func cpuQuota(cgroupV2Max text: String) -> Double? {
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard fields.count >= 2, let quota = Double(fields[0]), let period = Double(fields[1]), quota > 0, period > 0 else {
            return nil
        }
        return quota / period
    }

    /// cgroup v1 `cpu.cfs_quota_us` (-1: no limit) and `cpu.cfs_period_us`.
    static func cpuQuota(cfsQuota: String, period: String) -> Double? {
        guard let q = Double(cfsQuota.filter { $0 != "\n" }), let p = Double(period.filter { $0 != "\n" }), q > 0, p > 0 else {
            return nil
        }
        return q / p
    }

    /// Raises the soft limit on open descriptors to the hard limit; returns the soft
    /// limit in force afterwards.
    @discardableResult
    public static func raiseDescriptorLimit() -> Int {
        var limit = rlimit()
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        // Linux's default soft limit, should the limits be unreadable.
        guard (try? systemCall("getrlimit", { getrlimit(resource, &limit) })) != nil else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if (try? systemCall("setrlimit", { setrlimit(resource, &raised) })) != nil { limit = raised }
        }
        return limit.rlim_cur >= rlim_t(Int.max) ? Int.max : Int(limit.rlim_cur)
    }

    /// Descriptors kept free of the webhook's connections: listeners, epoll and eventfds,
    /// log and certificate files, inotify, spares, what a reload opens, and the health and
    /// metrics listeners' connections (32 each at most).
    public static let reservedDescriptors = 128

    /// `configured` connections, clamped so they fit under the descriptor limit.
    public static func connectionCap(configured: Int, descriptorLimit: Int) -> Int {
        max(1, min(configured, descriptorLimit - reservedDescriptors))
    }

    /// A small file's text (procfs and cgroupfs), nil when unreadable or empty.
    private static func readSmallFile(_ path: String, limit: Int = 64 * 1024) -> String? {
        guard let bytes = try? FileContents.read(path: path, limit: limit), !bytes.isEmpty else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }
}
