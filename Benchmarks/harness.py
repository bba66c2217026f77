"""Shared by memory.py and soak.py: a throwaway certificate, the release server on an
ephemeral loopback port, and its resident memory."""
import re
import subprocess
import tempfile
import threading


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def start_server(binary):
    """Returns (process, port, scratch directory); stderr is drained in the background."""
    work = tempfile.mkdtemp(prefix="asw-bench-")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", f"{work}/tls.key", "-out", f"{work}/tls.crt", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    server = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0", "--health-listen", "127.0.0.1:0",
                               "--metrics-listen", "127.0.0.1:0", "--tls-cert", f"{work}/tls.crt",
                               "--tls-key", f"{work}/tls.key"], stderr=subprocess.PIPE, text=True)
    port = None
    while port is None:
        line = server.stderr.readline()
        if not line:
            raise RuntimeError("the server exited before it listened")
        match = re.search(r'"address":"127\.0\.0\.1:(\d+)"', line)
        port = int(match.group(1)) if match else None
    threading.Thread(target=server.stderr.read, daemon=True).start()
    return server, port, work
