"""A stand-in HTTPS proxy: answers every CONNECT with one fixed status (407 or 502)."""
import socket, sys
port, status = int(sys.argv[1]), sys.argv[2]
extra = 'Proxy-Authenticate: Basic realm="corp-proxy"\r\n' if status.startswith("407") else ""
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port)); s.listen(5)
while True:
    c, _ = s.accept()
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = c.recv(4096)
        if not chunk:
            break
        data += chunk
    sys.stderr.write(data.decode(errors="replace").splitlines()[0] + "\n"); sys.stderr.flush()
    c.sendall(f"HTTP/1.1 {status}\r\n{extra}Content-Length: 7\r\nConnection: close\r\n\r\ndenied\n".encode())
    c.close()
