"""Village service stations and logistics: the county / township / village service
network, delivery zones and quotes, assisted purchases with the keeper's commission,
and villagers' products taken in for sale (seed 001 §III.D, §IV.D; seed 004 §2.1.2)."""
