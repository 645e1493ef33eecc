"""A listener that never accepts, its backlog filled: further SYNs are dropped (connect timeout)."""
import socket, time, sys
port = int(sys.argv[1])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port)); s.listen(0)
fillers = []
for _ in range(4):
    c = socket.socket(); c.settimeout(1)
    try:
        c.connect(("127.0.0.1", port)); fillers.append(c)
    except OSError:
        break
print("filled", len(fillers), flush=True)
time.sleep(120)
