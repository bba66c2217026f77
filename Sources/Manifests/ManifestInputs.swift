import Glibc

/// Expands the command line's paths into the files to check: files as given, directories
/// recursively (`*.yaml`, `*.yml`, `*.json`, in name order), `-` for standard input.
public enum ManifestInputs {
    public static let extensions = [".yaml", ".yml", ".json"]

    /// Paths in order; a path that does not exist is kept, so reading it reports the error.
    public static func expand(_ paths: [String]) -> [String] {
        var out: [String] = []
        var visited = Set<String>()
        for path in paths {
            if path != "-", isDirectory(path) {
                walk(path, into: &out, visited: &visited)
            } else {
                out.append(path)
            }
        }
        return out
    }

    private static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// Device and inode: a symlink loop is walked once.
    private static func identity(_ path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return "\(info.st_dev):\(info.st_ino)"
    }

    private static func walk(_ directory: String, into out: inout [String], visited: inout Set<String>) {
        guard let id = identity(directory), visited.insert(id).inserted, let handle = opendir(directory) else { return }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name == "." || name == ".." || name.hasPrefix(".") { continue }
            names.append(name)
        }
        closedir(handle)
        for name in names.sorted() {
            let path = directory.hasSuffix("/") ? directory + name : directory + "/" + name
            if isDirectory(path) {
                walk(path, into: &out, visited: &visited)
            } else if extensions.contains(where: { name.hasSuffix($0) }) {
                out.append(path)
            }
        }
    }
}
