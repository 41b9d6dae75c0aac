# shellcheck shell=bash
# Shared functions of setup/run and setup/test. Source it; it defines functions and settings only.
#
# Settings (environment variables, all optional):
#   ODOO_PATH         Odoo source tree: 17.0, 18.0 or 19.0 (default /opt/odoo/18.0)
#   OCORE_VENV        Odoo's virtualenv (default <repo>/.venv for 18.0, <repo>/.venv-<series> for
#                     the other series, e.g. .venv-19.0)
#   OCORE_TEST_VENV   virtualenv of the end-to-end tests (default <repo>/.venv-test)
#   OCORE_PYTHON      interpreter of Odoo's virtualenv (default: Python 3.11 for Odoo 17.0 and 18.0,
#                     3.12 for 19.0, looked up on PATH, then among pyenv's versions)
#   OCORE_DB          database of setup/run (default ocore for 18.0, ocore_<major> for the other
#                     series, e.g. ocore_19)
#   OCORE_HTTP_PORT   HTTP port of setup/run (default 8069)
#   OCORE_HTTP_INTERFACE  address Odoo listens on (default 127.0.0.1)
#   OCORE_ADDONS      addons setup/run installs (comma-separated, default: every product addon,
#                     ocore_mcp,ocore_mcp_knowledge,ocore_mcp_oauth; OCORE_ADDONS=ocore_mcp for a lean install)
#   PGHOST, PGPORT, PGUSER, PGPASSWORD
#                     an existing PostgreSQL server, used as-is when PGHOST or PGUSER is set;
#                     otherwise the local cluster is started and a role "odoo" is created
#   OCORE_PG_PASSWORD password of that local "odoo" role (default odoo; the local cluster
#                     only listens on localhost)

OCORE_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ODOO_PATH=${ODOO_PATH:-/opt/odoo/18.0}
# The series whose virtualenv, configuration and database keep the plain names (.venv, odoo.conf, ocore).
OCORE_DEFAULT_SERIES=18.0
OCORE_VENV=${OCORE_VENV:-}
OCORE_TEST_VENV=${OCORE_TEST_VENV:-$OCORE_REPO/.venv-test}
OCORE_LOCAL=$OCORE_REPO/.local
OCORE_CONF=""
OCORE_DB=${OCORE_DB:-}
OCORE_HTTP_PORT=${OCORE_HTTP_PORT:-8069}
OCORE_HTTP_INTERFACE=${OCORE_HTTP_INTERFACE:-127.0.0.1}
# Every product addon by default: the knowledge tools and OAuth (the connection the spec recommends) come
# with a new database; OCORE_ADDONS=ocore_mcp is the lean install.
OCORE_PRODUCT_ADDONS=ocore_mcp,ocore_mcp_knowledge,ocore_mcp_oauth
OCORE_ADDONS=${OCORE_ADDONS:-$OCORE_PRODUCT_ADDONS}

# Bump to force a rebuild of the venvs when the install recipe below changes.
OCORE_RECIPE=3

# Filled by the functions below.
ODOO_BIN=""
ODOO_MAJOR=""
ODOO_SERIES=""
ODOO_ADDONS_PATH=""
OCORE_PYTHON_BIN=""
_OCORE_APT_UPDATED=""

log() { printf '\033[1;34m[ocore]\033[0m %s\n' "$*" >&2; }
warn() { printf '\033[1;33m[ocore] warning:\033[0m %s\n' "$*" >&2; }
die() {
    printf '\033[1;31m[ocore] error:\033[0m %s\n' "$*" >&2
    exit 1
}

# Seconds since the script started, for progress messages.
elapsed() { printf '%ss' "$SECONDS"; }

# Serialise the preparation steps of concurrent setup/run and setup/test calls on one checkout.
# Daemons started while the lock is held (PostgreSQL, by apt-get or pg_ctlcluster) get the lock's file
# descriptor closed (9>&-): a daemon that inherits it keeps the lock taken as long as it lives.
ocore_lock() {
    mkdir -p "$OCORE_LOCAL"
    exec 9>"$OCORE_LOCAL/prepare.lock"
    if ! flock -n 9; then
        log "another setup/run or setup/test is preparing this checkout; waiting for it"
        flock 9
    fi
}
ocore_unlock() { exec 9>&-; }

# a) Odoo source tree --------------------------------------------------------------------------
# Finds the launcher and the series of the tree at ODOO_PATH, and derives what depends on the series:
# the virtualenv, the configuration file and setup/run's database.
ocore_find_odoo() {
    if [[ -f $ODOO_PATH/odoo-bin ]]; then
        ODOO_BIN=$ODOO_PATH/odoo-bin # 17.0, 18.0 source trees
    elif [[ -f $ODOO_PATH/setup/odoo ]]; then
        ODOO_BIN=$ODOO_PATH/setup/odoo # 19.0 (and the nightly packages): needs the tree importable
    else
        die "no Odoo source tree at ODOO_PATH=$ODOO_PATH (neither $ODOO_PATH/odoo-bin nor $ODOO_PATH/setup/odoo exists).
  oCore MCP runs inside Odoo and needs an Odoo Community source tree (17.0, 18.0 or 19.0: odoo/,
  requirements.txt and odoo-bin or setup/odoo) extracted at $ODOO_PATH, or ODOO_PATH set to where it is, e.g.
      ODOO_PATH=/path/to/odoo-18.0 setup/run
  See README.md, section \"Getting Odoo\"."
    fi
    [[ -f $ODOO_PATH/odoo/release.py && -f $ODOO_PATH/requirements.txt ]] ||
        die "$ODOO_PATH looks incomplete: odoo/release.py or requirements.txt is missing (see README.md, \"Getting Odoo\")"
    ODOO_MAJOR=$(sed -n 's/^version_info = (\([0-9]*\), *\([0-9]*\),.*/\1/p' "$ODOO_PATH/odoo/release.py")
    ODOO_SERIES=$(sed -n 's/^version_info = (\([0-9]*\), *\([0-9]*\),.*/\1.\2/p' "$ODOO_PATH/odoo/release.py")
    [[ -n $ODOO_MAJOR && -n $ODOO_SERIES ]] || die "cannot read Odoo's version from $ODOO_PATH/odoo/release.py"
    case $ODOO_MAJOR in
    17 | 18 | 19) ;;
    *) warn "Odoo $ODOO_SERIES at $ODOO_PATH: oCore MCP supports 17.0, 18.0 and 19.0 only" ;;
    esac

    # 18.0 source trees keep the addons in addons/ and base in odoo/addons/; the 17.0 and 19.0
    # packages keep all of them in odoo/addons/.
    ODOO_ADDONS_PATH=$OCORE_REPO
    if [[ -f $ODOO_PATH/addons/web/__manifest__.py ]]; then
        ODOO_ADDONS_PATH+=,$ODOO_PATH/addons
    fi
    [[ -f $ODOO_PATH/odoo/addons/base/__manifest__.py ]] ||
        die "$ODOO_PATH/odoo/addons/base is missing: the Odoo source tree is incomplete"
    ODOO_ADDONS_PATH+=,$ODOO_PATH/odoo/addons

    # One virtualenv, configuration and setup/run database per series: they cannot be shared.
    if [[ $ODOO_SERIES == "$OCORE_DEFAULT_SERIES" ]]; then
        OCORE_VENV=${OCORE_VENV:-$OCORE_REPO/.venv}
        OCORE_CONF=$OCORE_LOCAL/odoo.conf
        OCORE_DB=${OCORE_DB:-ocore}
    else
        OCORE_VENV=${OCORE_VENV:-$OCORE_REPO/.venv-$ODOO_SERIES}
        OCORE_CONF=$OCORE_LOCAL/odoo-$ODOO_SERIES.conf
        OCORE_DB=${OCORE_DB:-ocore_$ODOO_MAJOR}
    fi
    log "Odoo $ODOO_SERIES at $ODOO_PATH (launcher ${ODOO_BIN#"$ODOO_PATH"/}, virtualenv ${OCORE_VENV#"$OCORE_REPO"/})"
}

# The Python version a series runs on.
ocore_python_version() {
    if (($1 >= 19)); then echo 3.12; else echo 3.11; fi
}

# Prints an interpreter of Python $1 (e.g. 3.12) that really runs and has venv: python3.X on PATH
# (a pyenv shim of a version that is not selected refuses to run), then pyenv's versions, then the
# usual prefixes. Prints nothing when there is none.
ocore_lookup_python() {
    local want=$1 cand root
    local cands=()
    cand=$(command -v "python$want" 2>/dev/null || true)
    [[ -n $cand ]] && cands+=("$cand")
    for root in "${PYENV_ROOT:-}" "$HOME/.pyenv" /root/.pyenv /opt/pyenv /usr/local/pyenv; do
        [[ -n $root && -d $root/versions ]] || continue
        while IFS= read -r cand; do cands+=("$cand"); done < <(
            compgen -G "$root/versions/$want.*/bin/python$want" | sort -rV)
    done
    cands+=("/usr/local/bin/python$want" "/usr/bin/python$want")
    for cand in "${cands[@]}"; do
        [[ -x $cand ]] || continue
        if [[ $("$cand" -c 'import sys, venv; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) == "$want" ]]; then
            printf '%s\n' "$cand"
            return 0
        fi
    done
}

ocore_find_python() {
    local want
    want=$(ocore_python_version "$ODOO_MAJOR")
    if [[ -n ${OCORE_PYTHON:-} ]]; then
        OCORE_PYTHON_BIN=$(command -v "$OCORE_PYTHON" || true)
        if [[ -z $OCORE_PYTHON_BIN ]] || ! "$OCORE_PYTHON_BIN" -c 'import venv' 2>/dev/null; then
            die "OCORE_PYTHON=$OCORE_PYTHON does not run (or lacks the venv module)"
        fi
        local have
        have=$("$OCORE_PYTHON_BIN" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
        [[ $have == "$want" ]] || warn "OCORE_PYTHON is Python $have; Odoo $ODOO_SERIES is tested with Python $want"
        return 0
    fi
    OCORE_PYTHON_BIN=$(ocore_lookup_python "$want")
    [[ -n $OCORE_PYTHON_BIN ]] ||
        die "Python $want not found (Odoo $ODOO_SERIES needs it): neither python$want on PATH runs nor is there one
  among pyenv's versions (\$PYENV_ROOT/versions/$want.*). Install it (e.g. pyenv install $want) or set
  OCORE_PYTHON=/path/to/python$want"
}

# b) Debian packages ---------------------------------------------------------------------------
ocore_apt_ensure() {
    local pkg missing=()
    for pkg in "$@"; do
        [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) == "install ok installed" ]] || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    if ((EUID != 0)); then
        die "missing Debian packages: ${missing[*]}
  install them as root:  apt-get install -y ${missing[*]}"
    fi
    log "installing Debian packages: ${missing[*]} ($(elapsed))"
    export DEBIAN_FRONTEND=noninteractive
    if [[ -z $_OCORE_APT_UPDATED ]]; then
        apt-get update -qq || die "apt-get update failed"
        _OCORE_APT_UPDATED=1
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$OCORE_LOCAL/apt.log" 2>&1 9>&- || {
        tail -n 30 "$OCORE_LOCAL/apt.log" >&2
        die "apt-get install ${missing[*]} failed (full log: $OCORE_LOCAL/apt.log)"
    }
}

# Packages Odoo needs to build its Python dependencies and to print PDF reports.
ocore_apt_base() {
    mkdir -p "$OCORE_LOCAL"
    local pkgs=(libldap2-dev libsasl2-dev libpq-dev gcc postgresql-client wkhtmltopdf poppler-utils)
    if ! ocore_pg_external && ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
        pkgs+=(postgresql)
    fi
    ocore_apt_ensure "${pkgs[@]}"
}

# c) PostgreSQL --------------------------------------------------------------------------------
ocore_pg_external() { [[ -n ${PGHOST:-} || -n ${PGUSER:-} ]]; }

# Sets and exports PGHOST, PGPORT, PGUSER, PGPASSWORD (empty values mean libpq's defaults).
ocore_pg_ensure() {
    if ocore_pg_external; then
        export PGHOST=${PGHOST:-} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-odoo} PGPASSWORD=${PGPASSWORD:-}
        log "PostgreSQL: using the given server ${PGHOST:-(local socket)}:$PGPORT as $PGUSER"
    else
        _ocore_pg_local
    fi
    psql -d postgres -Atqc 'SELECT 1' >/dev/null 2>"$OCORE_LOCAL/psql.err" ||
        die "cannot connect to PostgreSQL as $PGUSER on ${PGHOST:-(local socket)}:$PGPORT: $(cat "$OCORE_LOCAL/psql.err")"
    [[ $PGUSER != postgres ]] || die "Odoo refuses to run as the PostgreSQL superuser 'postgres': use another role"
}

_ocore_pg_local() {
    local ver cluster port status
    # The newest cluster that exists; create one for the newest server version when there is none.
    read -r ver cluster port status _ < <(pg_lsclusters -h 2>/dev/null | sort -k1,1V | tail -n 1) || true
    if [[ -z ${ver:-} ]]; then
        ver=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -V | tail -n 1)
        [[ -n $ver && -x /usr/lib/postgresql/$ver/bin/postgres ]] ||
            die "no PostgreSQL server installed: apt-get install postgresql, or set PGHOST/PGUSER/PGPASSWORD"
        ((EUID == 0)) || die "no PostgreSQL cluster exists; create one as root (pg_createcluster $ver main --start) or set PGHOST"
        log "creating PostgreSQL $ver cluster 'main'"
        pg_createcluster "$ver" main >/dev/null 9>&-
        read -r ver cluster port status _ < <(pg_lsclusters -h | awk -v v="$ver" '$1 == v && $2 == "main"')
    fi
    if [[ $status != online* ]]; then
        ((EUID == 0)) || die "PostgreSQL $ver/$cluster is down; start it as root: pg_ctlcluster $ver $cluster start"
        log "starting PostgreSQL $ver/$cluster on port $port"
        pg_ctlcluster "$ver" "$cluster" start 9>&- || die "pg_ctlcluster $ver $cluster start failed (see /var/log/postgresql/)"
    fi
    export PGHOST=127.0.0.1 PGPORT=$port PGUSER=odoo PGPASSWORD=${OCORE_PG_PASSWORD:-odoo}
    if ! psql -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1; then
        ((EUID == 0)) || die "cannot log in to PostgreSQL as odoo; as root run setup/run once, or set PGHOST/PGUSER/PGPASSWORD"
        log "PostgreSQL: creating/updating role odoo (LOGIN CREATEDB)"
        local sql_pw=${PGPASSWORD//\'/\'\'}
        env -u PGHOST -u PGUSER -u PGPASSWORD -u PGDATABASE runuser -u postgres -- psql -p "$port" -d postgres -qv ON_ERROR_STOP=1 >/dev/null <<SQL ||
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'odoo') THEN CREATE ROLE odoo; END IF;
END \$\$;
ALTER ROLE odoo WITH LOGIN CREATEDB NOSUPERUSER PASSWORD '$sql_pw';
SQL
            die "could not create the PostgreSQL role odoo"
    fi
    # The SQL tools' read-only role (ocore_mcp/lib/sqlrole.py; README "Read-only role"): created here as the
    # superuser, so that odoo needs no CREATEROLE (before PostgreSQL 16 that attribute is nearly superuser).
    if [[ $(psql -d postgres -Atqc "SELECT pg_has_role('ocore_mcp_sql_odoo', 'MEMBER')" 2>/dev/null) != t ]]; then
        if ((EUID == 0)); then
            log "PostgreSQL: creating role ocore_mcp_sql_odoo (NOLOGIN: the SQL tools read as it) for odoo"
            env -u PGHOST -u PGUSER -u PGPASSWORD -u PGDATABASE runuser -u postgres -- psql -p "$port" -d postgres \
                -qv ON_ERROR_STOP=1 >/dev/null <<'SQL' || warn "could not create the role ocore_mcp_sql_odoo"
SET client_min_messages = warning;
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ocore_mcp_sql_odoo') THEN CREATE ROLE ocore_mcp_sql_odoo NOLOGIN; END IF;
END $$;
GRANT ocore_mcp_sql_odoo TO odoo;
SQL
        else
            warn "the role ocore_mcp_sql_odoo is missing: the SQL tools refuse queries on tables holding credentials" \
                "until a superuser runs: CREATE ROLE ocore_mcp_sql_odoo NOLOGIN; GRANT ocore_mcp_sql_odoo TO odoo;"
        fi
    fi
    log "PostgreSQL $ver/$cluster on 127.0.0.1:$port, role odoo"
}

ocore_db_exists() {
    [[ $(psql -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = '$1'") == 1 ]]
}

# State of a module in a database ("" when the database is no Odoo database or lacks the module).
ocore_module_state() {
    psql -d "$1" -Atqc "SELECT state FROM ir_module_module WHERE name = '$2'" 2>/dev/null || true
}

ocore_drop_db() {
    local db=$1
    psql -d postgres -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 ||
        warn "could not drop database $db"
    rm -rf "$OCORE_LOCAL/data/filestore/$db"
}

# d) + e) virtualenvs --------------------------------------------------------------------------
_ocore_hash() { cat "$@" | sha256sum | cut -c1-16; }

_ocore_pip() {
    local venv=$1
    shift
    "$venv/bin/python" -m pip --disable-pip-version-check --no-input "$@"
}

# Creates or updates a virtualenv, the one recipe of both venvs:
#   _ocore_venv_ensure VENV PYTHON LABEL "BOOTSTRAP PACKAGES" [PIP INSTALL ARGS...]
# creates VENV with PYTHON when missing (and refuses one of another Python version), upgrades pip, wheel
# and the bootstrap packages, installs the arguments (requirements files among them), runs pip check.
# A stamp keeps the hash of the recipe, the Python version and every requirements file given: nothing is
# reinstalled while they are unchanged.
_ocore_venv_ensure() {
    local venv=$1 python=$2 label=$3 bootstrap=$4 want have arg hash stamp=$1/.ocore-stamp
    shift 4
    local files=()
    for arg in "$@"; do [[ -f $arg ]] && files+=("$arg"); done
    want=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    if [[ -x $venv/bin/python ]]; then
        have=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo broken)
        [[ $have == "$want" ]] ||
            die "$venv runs Python $have, but Python $want is needed: remove it (rm -rf $venv) or point OCORE_VENV/OCORE_TEST_VENV elsewhere"
    else
        log "creating virtualenv $venv (Python $want, $python)"
        "$python" -m venv "$venv" || die "could not create the virtualenv $venv"
    fi
    hash=$(printf '%s %s %s\n' "$OCORE_RECIPE" "$want" "$bootstrap" | _ocore_hash - "${files[@]}")
    if [[ -f $stamp && $(<"$stamp") == "$hash" ]]; then
        log "$label virtualenv up to date ($venv)"
        return 0
    fi
    log "installing Python packages into $venv ($(elapsed))"
    rm -f "$stamp"
    # shellcheck disable=SC2086 # the bootstrap packages are a word list
    _ocore_pip "$venv" install -q --upgrade pip wheel $bootstrap ||
        die "pip could not upgrade pip/wheel${bootstrap:+/$bootstrap} in $venv"
    _ocore_pip "$venv" install -q "$@" || die "pip could not install $* into $venv"
    _ocore_pip "$venv" check || die "pip check found conflicts in $venv"
    printf '%s\n' "$hash" >"$stamp"
    log "$label virtualenv ready ($(elapsed))"
}

# The Odoo venv: Odoo's requirements and ours, resolved together so that none of ours moves one of Odoo's
# pins, except two moved to versions Odoo pins itself elsewhere: cbor2 5.4.2 -> 5.6.2 (5.4.2 does not build
# on Python 3.11; Odoo's pin for 3.12) and, for 17.0 on Python 3.11, requests 2.25.1 -> 2.31.0 (Odoo 17.0's
# pin for Python 3.12 and 18.0's for 3.11; posthog and docker need requests >= 2.26). setuptools stays below 81: gevent
# needs pkg_resources at run time. The source tree is made importable (a .pth file): 19.0's launcher
# setup/odoo imports the odoo package from sys.path.
ocore_venv_ensure() {
    local reqs=$OCORE_LOCAL/odoo-requirements-$ODOO_SERIES.txt site
    mkdir -p "$OCORE_LOCAL"
    sed -e 's/^cbor2==5\.4\.2\b/cbor2==5.6.2/' -e 's/^requests==2\.25\.1\b/requests==2.31.0/' \
        "$ODOO_PATH/requirements.txt" >"$reqs"
    _ocore_venv_ensure "$OCORE_VENV" "$OCORE_PYTHON_BIN" "Odoo $ODOO_SERIES" 'setuptools>=80,<81' \
        --no-build-isolation 'setuptools>=80,<81' -r "$reqs" -r "$OCORE_REPO/requirements.txt"
    site=$("$OCORE_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') ||
        die "cannot find the site-packages of $OCORE_VENV"
    printf '%s\n' "$ODOO_PATH" >"$site/ocore-odoo-path.pth"
}

# The end-to-end tests' venv: the official MCP SDK client and the test tools. It is separate
# because the SDK needs a newer idna than Odoo pins. It runs on Python 3.11 whatever the series.
ocore_test_venv_ensure() {
    local python
    if [[ -x $OCORE_TEST_VENV/bin/python ]]; then
        python=$OCORE_TEST_VENV/bin/python
    else
        python=$(ocore_lookup_python 3.11)
        [[ -n $python ]] || die "Python 3.11 not found for the test virtualenv $OCORE_TEST_VENV: install it (e.g. pyenv install 3.11)"
    fi
    _ocore_venv_ensure "$OCORE_TEST_VENV" "$python" "test" "" -r "$OCORE_REPO/tests/requirements.txt"
}

# f) Odoo configuration ------------------------------------------------------------------------
# Regenerated on every call: pass further options to Odoo on the command line instead of editing it.
ocore_write_conf() {
    local admin_passwd=""
    mkdir -p "$OCORE_LOCAL/data"
    # Keep the master password across regenerations.
    [[ -f $OCORE_CONF ]] && admin_passwd=$(sed -n 's/^admin_passwd = //p' "$OCORE_CONF")
    [[ -n $admin_passwd ]] || admin_passwd=$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n')
    local tmp=$OCORE_CONF.tmp.$$
    cat >"$tmp" <<EOF
; Generated by setup/run and setup/test on every call (Odoo $ODOO_SERIES at $ODOO_PATH): edits are overwritten.
; Pass more options on the command line instead, e.g. setup/run -- --workers=2
[options]
addons_path = $ODOO_ADDONS_PATH
data_dir = $OCORE_LOCAL/data
admin_passwd = $admin_passwd
db_host = ${PGHOST:-False}
db_port = ${PGPORT:-False}
db_user = ${PGUSER:-False}
db_password = ${PGPASSWORD:-False}
; one database per server: no database manager, no database list
db_name = $OCORE_DB
list_db = False
dbfilter =
http_interface = $OCORE_HTTP_INTERFACE
http_port = $OCORE_HTTP_PORT
without_demo = True
EOF
    chmod 600 "$tmp"
    mv -f "$tmp" "$OCORE_CONF"
}

# Runs odoo-bin (or setup/odoo) with the venv's python and the generated configuration.
# The venv's bin/ must be on PATH: Odoo re-executes basename(sys.executable) when it reloads.
ocore_odoo() {
    PATH=$OCORE_VENV/bin:$PATH "$OCORE_VENV/bin/python" "$ODOO_BIN" "$@"
}

# Everything both commands need before they touch a database.
ocore_prepare() {
    ocore_find_odoo
    ocore_find_python
    ocore_apt_base
    ocore_pg_ensure
    ocore_venv_ensure
    ocore_write_conf
}

# g) database ----------------------------------------------------------------------------------
# Names of the installable addons in a directory (default: the top level of the repository).
ocore_find_addons() {
    "$OCORE_VENV/bin/python" - "${1:-$OCORE_REPO}" <<'PY'
import ast, pathlib, sys
for manifest in sorted(pathlib.Path(sys.argv[1]).glob("*/__manifest__.py")):
    try:
        data = ast.literal_eval(manifest.read_text())
    except (SyntaxError, ValueError) as exc:
        sys.exit(f"{manifest}: unreadable manifest ({exc})")
    if data.get("installable", True):
        print(manifest.parent.name)
PY
}

# Checks that each addon of a comma-separated list exists in one of the given directories
# (default: the top level of the repository).
ocore_check_addons_present() {
    local list=$1 addon dir
    shift
    (($#)) || set -- "$OCORE_REPO"
    for addon in ${list//,/ }; do
        for dir in "$@"; do
            [[ -f $dir/$addon/__manifest__.py ]] && continue 2
        done
        die "addon $addon not found: no $addon/__manifest__.py in $*"
    done
}

# A free TCP port on localhost.
ocore_free_port() {
    "$OCORE_VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

ocore_port_free() {
    "$OCORE_VENV/bin/python" - "$1" "$2" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind((sys.argv[1], int(sys.argv[2])))
except OSError:
    sys.exit(1)
PY
}
