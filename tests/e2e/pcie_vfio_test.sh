#!/usr/bin/env bash
# End to end on a real PCIe NVMe controller through VFIO: a VM (QEMU q35 with
# an emulated Intel IOMMU, ../shared/tools/kernel-initiator --vfio) gets an
# emulated NVMe controller over a raw image bound to vfio-pci. In the guest,
# pcie-smoke (our engine, driver and pool code) creates a pool and a thick
# replica on pcie:///BDF, writes and verifies every block through the engine,
# exits (orderly controller shutdown); a second engine process brings the
# controller up again, imports the pool and verifies every block. Then the
# host reads the image and finds every replica block with the right stamp
# exactly once: the bytes really went to the device.
# All of it twice, on two emulated controllers (two images): with PRP data
# pointers (pcie:///BDF?sgl=off) on the first, then with SGLs (?sgl=on:
# QEMU's controller advertises them) on the second, over a smaller replica
# and another stamp. Each pass's start-up log line must name the data
# pointers it asked for, and in the SGL pass the shutdown lines must count
# every read and write as sent with an SGL (none with PRP). pcie-smoke's
# buffers are contiguous (single Data Block descriptors), so a third,
# scratch controller gets pcie_tests' PcieVfio test: scattered and odd-byte
# buffers in Last Segment lists, a full 256-descriptor list page, each read
# back exact.
#
#   pcie_vfio_test.sh PCIE_SMOKE_BIN KERNEL_INITIATOR [PCIE_TESTS_BIN]
# (PCIE_TESTS_BIN defaults to tests/pcie_tests of the same build tree.)
# Exit 77 (skipped) when the VM tool or QEMU is not there.
set -uo pipefail

smoke=${1:?usage: pcie_vfio_test.sh PCIE_SMOKE_BIN KERNEL_INITIATOR}
ki=${2:?usage: pcie_vfio_test.sh PCIE_SMOKE_BIN KERNEL_INITIATOR}
pcie_tests=${3:-$(dirname "$smoke")/../tests/pcie_tests}
mb=${PCIE_E2E_MB:-16}
seed=${PCIE_E2E_SEED:-4242}
sgl_mb=${PCIE_E2E_SGL_MB:-8}
sgl_seed=$((seed + 1))

if [[ ! -x $ki ]]; then echo "SKIP: $ki not found"; exit 77; fi
if ! command -v qemu-system-x86_64 >/dev/null; then echo "SKIP: no qemu-system-x86_64"; exit 77; fi
[[ -x $smoke ]] || { echo "FAIL: $smoke is not built"; exit 1; }
[[ -x $pcie_tests ]] || { echo "FAIL: $pcie_tests is not built (target pcie_tests)"; exit 1; }

work=$(mktemp -d /var/tmp/pcie_vfio_e2e.XXXXXX)
trap 'rm -rf "$work"' EXIT
img=$work/nvme.img        # the PRP pass
sgl_img=$work/nvme-sgl.img  # the SGL pass
scratch_img=$work/nvme-scratch.img  # pcie_tests' scattered SGL I/O
truncate -s 256M "$img" "$sgl_img"
truncate -s 16M "$scratch_img"

# shellcheck disable=SC2016  # expanded in the guest
guest='set -e
set -- $KI_VFIO_DEVS
dev=$1 dev2=$2 dev3=$3
echo "guest: VFIO mode $KI_VFIO_MODE, devices $dev $dev2 $dev3, groups $KI_VFIO_GROUPS"
[ -n "$dev3" ]
echo "guest: pass scatter begin"
PCIE_VFIO_BDF=$dev3 pcie_tests --gtest_filter="PcieVfio.*"
echo "guest: pass scatter end"
echo "guest: pass prp begin"
pcie-smoke write "$dev?sgl=off" --mb '"$mb"' --seed '"$seed"'
pcie-smoke verify "$dev?sgl=off" --mb '"$mb"' --seed '"$seed"'
echo "guest: pass prp end"
echo "guest: pass sgl begin"
pcie-smoke write "$dev2?sgl=on" --mb '"$sgl_mb"' --seed '"$sgl_seed"'
pcie-smoke verify "$dev2?sgl=on" --mb '"$sgl_mb"' --seed '"$sgl_seed"'
echo "guest: pass sgl end"
echo "guest: PCIE-SMOKE-PASSED"'

# A guest that dies while booting, before our script ran (under TCG on a
# loaded host: "timer doesn't work through Interrupt-remapped IO-APIC"), is
# booted again, at most twice more; a failure after the script started is not.
log=$work/vm.log
for attempt in 1 2 3; do
    "$ki" run --vfio --nvme-image "$img" --nvme-image "$sgl_img" --nvme-image "$scratch_img" \
        --bin "$smoke" --bin "$pcie_tests" --script-timeout 900 --timeout 1200 \
        --cmd "$guest" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    [[ $rc -eq 3 ]] && ! grep -q "guest: VFIO mode" "$log" || break
    echo "the guest died while booting (attempt $attempt); booting again"
    truncate -s 0 "$img" "$sgl_img" "$scratch_img" && truncate -s 256M "$img" "$sgl_img" && truncate -s 16M "$scratch_img"
done
if [[ $rc -eq 4 ]]; then echo "SKIP: kernel-initiator could not set up the VM (exit 4)"; exit 77; fi
if [[ $rc -ne 0 ]] || ! grep -q "guest: PCIE-SMOKE-PASSED" "$log"; then
    echo "FAIL: the guest run failed (kernel-initiator exit $rc)"
    exit 1
fi
# The guest log between "guest: pass NAME begin" and "... end".
pass_log() { awk -v b="guest: pass $1 begin" -v e="guest: pass $1 end" 'index($0, b) {f = 1} index($0, e) {f = 0} f' "$log"; }
for p in prp sgl; do
    pl=$(pass_log "$p")
    grep -q '"mode": "write".*"bad_blocks": 0, "resets": 1' <<<"$pl" || { echo "FAIL: $p pass: no clean write + reset result in the guest log"; exit 1; }
    grep -q '"mode": "verify".*"bad_blocks": 0' <<<"$pl" || { echo "FAIL: $p pass: no clean verify result in the guest log"; exit 1; }
done
prp_log=$(pass_log prp)
sgl_log=$(pass_log sgl)
# Which data pointers each pass used, from the driver's own lines.
[[ $(grep -c 'data pointers: PRP' <<<"$prp_log") -eq 2 ]] || { echo "FAIL: the sgl=off pass did not start with PRP data pointers twice"; exit 1; }
grep -q 'reads and writes sent: 0 with SGL, [1-9][0-9]* with PRP' <<<"$prp_log" || { echo "FAIL: the sgl=off pass did not send its I/O with PRPs"; exit 1; }
[[ $(grep -c 'data pointers: SGL' <<<"$sgl_log") -eq 2 ]] || { echo "FAIL: the sgl=on pass did not start with SGL data pointers twice"; exit 1; }
sent=$(grep -o 'reads and writes sent: [0-9]* with SGL, [0-9]* with PRP' <<<"$sgl_log")
[[ $(grep -c . <<<"$sent") -eq 2 ]] || { echo "FAIL: the sgl=on pass has no shutdown counts"; exit 1; }
if grep -qv 'sent: [1-9][0-9]* with SGL, 0 with PRP' <<<"$sent"; then
    echo "FAIL: the sgl=on pass sent reads or writes without an SGL: $sent"; exit 1
fi
echo "SGL pass, I/O sent by each engine process: $(tr '\n' ';' <<<"$sent")"
scatter_log=$(pass_log scatter)
grep -q '\[  PASSED  \] 1 test' <<<"$scatter_log" && grep -q 'pcie-vfio-sgl: [1-9][0-9]* reads and writes with SGL, 0 with PRP, 0 failures' <<<"$scatter_log" || { echo "FAIL: the scattered SGL test did not pass on the scratch controller"; exit 1; }
grep 'pcie-vfio-sgl: ' <<<"$scatter_log"

# The host's view of the images: every 512-byte block of each pass's
# replica, stamped with (block << 16 | seed) in every 8-byte word, exactly
# once, on the image of the controller that pass used (QEMU serial ki-nvmeN
# is the Nth --nvme-image; the driver's start-up line names the serial).
image_of() {
    case $(grep -o 'serial ki-nvme[0-9]' <<<"$1" | sort -u) in
        "serial ki-nvme0") echo "$img" ;;
        "serial ki-nvme1") echo "$sgl_img" ;;
        *) echo "" ;;
    esac
}
prp_img=$(image_of "$prp_log")
sgl_pass_img=$(image_of "$sgl_log")
[[ -n $prp_img && -n $sgl_pass_img && $prp_img != "$sgl_pass_img" ]] || { echo "FAIL: cannot tell which image each pass used"; exit 1; }
"$smoke" scan-image "$prp_img" --mb "$mb" --seed "$seed" || { echo "FAIL: the image does not hold the PRP pass's replica"; exit 1; }
"$smoke" scan-image "$sgl_pass_img" --mb "$sgl_mb" --seed "$sgl_seed" || { echo "FAIL: the image does not hold the SGL pass's replica"; exit 1; }
echo "PASS: pool and replica on pcie:/// written, re-imported and verified in the VM with PRPs and with SGLs; the image holds every block of both; scattered SGL lists read back exact"
