"""Learning across signals: data, context masks, encoder, hypernetwork, the model, its training config,
checkpoints and the held-out evaluation against classical fills."""
