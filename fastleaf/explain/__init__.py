"""Why a model chose a species: class-activation maps and attention rollout as overlays."""
