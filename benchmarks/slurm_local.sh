#!/usr/bin/env bash
# A one-node SLURM cluster on this machine (Debian's slurm-wlm), and a tiny grid run through it with
# `launcher: slurm` (submitit's SLURM executor): the check behind `make grid-slurm-check`.
#
#   benchmarks/slurm_local.sh            install (apt, needs root) if missing, start, run the check, stop
#   KEEP=1 benchmarks/slurm_local.sh     leave the cluster running (stop it with: benchmarks/slurm_local.sh stop)
#
# Everything it writes lives in $WORK (default /tmp/sed_uda_slurm): its slurm.conf, daemon logs and
# state, a tiny bundled corpus and its cache, and the grid's runs. The daemons run as root (a test
# cluster, not a production set-up); jobs run as the user who submits them.
set -euo pipefail

WORK=${WORK:-/tmp/sed_uda_slurm}
REPO=$(cd "$(dirname "$0")/.." && pwd)
SED_UDA=${SED_UDA:-$REPO/.venv/bin/sed-uda}
export SLURM_CONF=$WORK/slurm.conf

stop() {
  for daemon in slurmd slurmctld; do
    if [[ -f $WORK/$daemon.pid ]]; then kill "$(cat "$WORK/$daemon.pid")" 2>/dev/null || true; fi
  done
}

if [[ ${1:-} == stop ]]; then stop; exit 0; fi

if ! command -v slurmctld >/dev/null; then
  echo "installing slurm-wlm (Debian package) ..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm >/dev/null
fi

mkdir -p "$WORK"/{state,spool}
host=$(hostname -s)
memory=$(awk '/MemTotal/ {print int($2 / 1024) - 1024}' /proc/meminfo)
cat >"$SLURM_CONF" <<EOF
ClusterName=sed_uda_local
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/slurmctld.log
SlurmdLogFile=$WORK/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
NodeName=$host CPUs=$(nproc) RealMemory=$memory State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

if ! pgrep -x munged >/dev/null; then
  mkdir -p /run/munge && chown munge:munge /run/munge
  runuser -u munge -- /usr/sbin/munged
fi
stop
/usr/sbin/slurmctld -f "$SLURM_CONF"
/usr/sbin/slurmd -f "$SLURM_CONF"
trap '[[ -n ${KEEP:-} ]] || stop' EXIT
for _ in $(seq 30); do
  sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed)' && break
  sleep 1
done
echo "--- sinfo"
sinfo

cd "$WORK"
"$SED_UDA" synth --out data/synth_esd --speakers-per-language 2 --utterances-per-emotion 8 --workers 2 >/dev/null
"$SED_UDA" prepare --root data/synth_esd --cache data/cache --workers 2 >/dev/null
cat >grid.yaml <<EOF
# Two source-only runs of the stats encoder, one per direction, each a SLURM job of 1 CPU.
name: slurm_check
runs_dir: runs/slurm_check
cells:
  - {adaptation: $REPO/configs/adaptation/source_only.yaml, encoder: $REPO/configs/encoder/stats.yaml}
directions:
  en2zh: $REPO/configs/experiment/en2zh.yaml
  zh2en: $REPO/configs/experiment/zh2en.yaml
overrides: ["--data.cache_dir=data/cache", "--trainer.max_epochs=2", "--data.batch_size=8", "--trainer.logger=false"]
launcher: {class_path: sed_uda.experiments.launchers.Slurm, init_args: {cpus_per_task: 1, time_min: 20}}
EOF
echo "--- sed-uda grid --config $WORK/grid.yaml (launcher: slurm)"
echo "(this cluster keeps no accounting database, so submitit warns that sacct failed; it reads each job's"
echo " result from its files instead)"
"$SED_UDA" grid --config grid.yaml
echo "--- SLURM jobs that ran (submitit folders) and where each record says it ran"
ls runs/slurm_check/.submitit
grep -hE '"(host|slurm_job_id|threads)"' runs/slurm_check/*/seed0/record.json
echo "--- the same command again: every run is done already"
"$SED_UDA" grid --config grid.yaml
"$SED_UDA" table --runs runs/slurm_check --out reports/slurm_check.md | head -8
