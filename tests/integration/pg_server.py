"""A throwaway PostgreSQL server for tests and benchmarks (Debian's `postgresql`).

initdb into a fresh temporary folder owned by an unprivileged user (the server
refuses to run as root: as root we run it as `postgres` through runuser),
listening on a Unix socket in that folder only (no TCP port to collide on),
stopped and removed by stop(). The binaries are found under
/usr/lib/postgresql/<version>/bin (the newest) or on PATH.

As a script: `pg_server.py start` prints `DIR<TAB>DSN` and leaves the server
running; `pg_server.py stop DIR` stops it and removes DIR (bench/pg.sh)."""
import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time

PORT = 5432  # only names the socket file (.s.PGSQL.5432) in our own folder


def find_bin(name):
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                  key=lambda d: int(d.split("/")[-2]) if d.split("/")[-2].isdigit() else 0)
    for d in reversed(dirs):
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    return shutil.which(name)


def available():
    """None when a server can be started, else why not."""
    for b in ("initdb", "pg_ctl", "postgres"):
        if not find_bin(b):
            return "%s not found (install Debian's postgresql: scripts/deps.sh test)" % b
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server as"
    return None


class PgServer:
    def __init__(self, dbname="hello_world", extra_conf=()):
        self.dbname = dbname
        self.extra_conf = list(extra_conf)
        self.dir = None
        self.user = None

    def _run(self, argv, **kw):
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        return subprocess.run(argv, capture_output=True, timeout=kw.pop("timeout", 120), **kw)

    @property
    def dsn(self):
        return "host=%s port=%d user=%s dbname=%s" % (self.dir, PORT, self.user, self.dbname)

    def start(self):
        why = available()
        if why:
            raise RuntimeError(why)
        self.dir = tempfile.mkdtemp(prefix="tern-pg-")
        os.chmod(self.dir, 0o755)
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.user = "postgres"
        else:
            self.user = pwd.getpwuid(os.geteuid()).pw_name
        data = os.path.join(self.dir, "data")
        r = self._run([find_bin("initdb"), "-D", data, "-A", "trust", "-U", self.user,
                       "-E", "UTF8", "--locale=C", "--no-sync"])
        if r.returncode:
            raise RuntimeError("initdb failed: %s" % r.stderr.decode(errors="replace"))
        opts = "-p %d -k %s -c listen_addresses='' -c fsync=off -c max_connections=200" % (PORT, self.dir)
        for c in self.extra_conf:
            opts += " -c " + c
        r = self._run([find_bin("pg_ctl"), "-D", data, "-o", opts, "-l",
                       os.path.join(self.dir, "server.log"), "-w", "-t", "60", "start"])
        if r.returncode:
            log = ""
            try:
                log = open(os.path.join(self.dir, "server.log")).read()[-2000:]
            except OSError:
                pass
            raise RuntimeError("pg_ctl start failed: %s %s" % (r.stderr.decode(errors="replace"), log))
        self.psql("postgres", "CREATE DATABASE %s" % self.dbname)
        return self

    def psql(self, db, sql):
        """Runs sql, returns stdout (unaligned, tuples only, | separated)."""
        r = self._run([find_bin("psql") or "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                       "-h", self.dir, "-p", str(PORT), "-U", self.user, "-d", db, "-c", sql],
                      timeout=60)
        if r.returncode:
            raise RuntimeError("psql %r failed: %s" % (sql, r.stderr.decode(errors="replace")))
        return r.stdout.decode()

    def query(self, sql):
        return self.psql(self.dbname, sql)

    def stop(self):
        if not self.dir:
            return
        data = os.path.join(self.dir, "data")
        if os.path.isdir(data):
            self._run([find_bin("pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"], timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None


def stop_dir(d):
    s = PgServer()
    s.dir = d
    s.stop()


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "start":
        why = available()
        if why:
            print(why, file=sys.stderr)
            sys.exit(3)
        conf = sys.argv[2:]
        srv = PgServer(extra_conf=conf).start()
        print("%s\t%s" % (srv.dir, srv.dsn))
    elif len(sys.argv) == 3 and sys.argv[1] == "stop":
        stop_dir(sys.argv[2])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
