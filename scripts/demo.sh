#!/usr/bin/env bash
# The README's main job: installs dependencies, builds, trains an OFA
# supernet with the whole progressive-shrinking recipe on Fashion-MNIST
# (configs/fashion_mnist.yaml, CPU), then evaluates a grid of its subnets on
# the test set and plots top-1 against MACs.
#   OFA_CONFIG  the recipe (default configs/fashion_mnist.yaml)
#   OFA_RUN     its run folder (default: the config's path, runs/fashion_mnist)
# Extra arguments go to ofa_train (e.g. --set n_worker=2). Running it again
# continues an interrupted run (--resume) and skips finished stages.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh
bin=${OFA_BUILD_DIR:-build}
config=${OFA_CONFIG:-configs/fashion_mnist.yaml}
run=${OFA_RUN:-runs/fashion_mnist}
start=$(date +%s)
"$bin/ofa_train" --config "$config" --path "$run" --resume "$@"
trained=$(date +%s)
last_stage=$("$bin/ofa_train" --config "$config" --path "$run" --print-config | sed -n 's/^path: "\(.*\)".*/\1/p' | tail -1)
"$bin/ofa_eval" --checkpoint "$last_stage/final.safetensors" --config "$config" \
  --data fashion_mnist --grid --image-sizes 32,40 --split test \
  --csv "$run/eval_grid.csv" --json "$run/eval_grid.json" --plot "$run/eval_grid.svg"
done_t=$(date +%s)
echo "demo: training $((trained - start)) s, evaluation $((done_t - trained)) s (this invocation); results in $run/"
