"""The peer of the devicemanager benchmark: Celery 5.2 (Debian's python3-celery) on the
same RabbitMQ, with the same durability as mware's jobs (persistent messages, acks_late,
prefetch 1 per process) and the same check (a TCP connect, its time in ms).

    worker: celery -A devices_celery worker --concurrency 4 --pool prefork -Q tcpcheck
    client: python3 devices_celery.py client --clients 64 --seconds 20 --target 127.0.0.1:9

The broker comes from CELERY_BROKER (amqp://guest:guest@127.0.0.1:5672/<vhost>); results
come back through Celery's rpc:// backend (AMQP replies), the fastest it has.
"""
import os
import socket
import sys
import threading
import time

from celery import Celery
from kombu import Queue

app = Celery("devices_celery", broker=os.environ.get("CELERY_BROKER", "amqp://guest:guest@127.0.0.1:5672//"), backend="rpc://")
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_acks_late=True,
    task_default_delivery_mode="persistent",
    worker_prefetch_multiplier=1,
    task_queues=[Queue("tcpcheck", durable=True)],
    task_default_queue="tcpcheck",
    broker_connection_retry_on_startup=True,
)


@app.task(name="tcp_check")
def tcp_check(target):
    host, port = target.rsplit(":", 1)
    t0 = time.perf_counter()
    s = socket.create_connection((host, int(port)), timeout=10)
    s.close()
    return {"connect_ms": (time.perf_counter() - t0) * 1000.0}


def client(clients, seconds, target):
    end = time.time() + seconds
    lat, failed, lock = [], [0], threading.Lock()

    def run():
        mine = []
        while time.time() < end:
            t0 = time.perf_counter()
            try:
                tcp_check.apply_async((target,)).get(timeout=30, interval=0.001)
                mine.append(time.perf_counter() - t0)
            except Exception:
                with lock:
                    failed[0] += 1
        with lock:
            lat.extend(mine)

    start = time.perf_counter()
    threads = [threading.Thread(target=run) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.perf_counter() - start
    lat.sort()
    pct = lambda p: lat[min(int(len(lat) * p), len(lat) - 1)] * 1000.0 if lat else 0.0
    print("celery: %d jobs in %.1f s = %.0f jobs/s, round trip p50 %.1f ms p99 %.1f ms, failed %d" % (len(lat), took, len(lat) / took, pct(0.5), pct(0.99), failed[0]))


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "client":
    a = sys.argv[2:]
    get = lambda k, d: a[a.index(k) + 1] if k in a else d
    client(int(get("--clients", "64")), int(get("--seconds", "20")), get("--target", "127.0.0.1:9"))
