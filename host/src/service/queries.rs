//! Questions the service answers without changing anything: history searches and transcripts,
//! live transcript pages, contacts, queues, presence, and whether an agent may have a file.

use super::*;

impl Worker {
    pub(super) fn query(&mut self, query: Query) -> Result<Answer, ClientError> {
        if let Query::Queues = query {
            return Ok(Answer::Queues(self.queues()));
        }
        if let Query::Attachment { agent, key, path } = &query {
            let plugin = self.core.taking_part(agent, *key)?.plugin.clone();
            if !self.details.carries(*key, path) {
                return Err(ClientError::NotAttached {
                    key: *key,
                    path: path.clone(),
                });
            }
            return Ok(Answer::Plugin(plugin));
        }
        if let Query::Presence = query {
            return Ok(Answer::Presence(snapshot::presence(&self.core)));
        }
        if let Query::Live {
            agent,
            key,
            offset,
            limit,
        } = &query
        {
            self.core.taking_part(agent, *key)?;
            if let Some(lines) = self.details.lines(*key, *offset, *limit) {
                return Ok(Answer::LiveLines(lines));
            }
        }
        let history = self
            .history
            .as_mut()
            .ok_or_else(|| ClientError::History("no history store".into()))?;
        let failed = |e: crate::storage::HistoryError| ClientError::History(e.to_string());
        Ok(match query {
            Query::Search {
                contact,
                text,
                limit,
            } => Answer::Entries(
                history
                    .search(contact, text.as_deref(), limit)
                    .map_err(failed)?,
            ),
            Query::Recent {
                agent,
                channel,
                outcome,
                limit,
            } => Answer::Entries(
                history
                    .recent(&agent, channel.as_deref(), outcome.as_deref(), limit)
                    .map_err(failed)?,
            ),
            Query::Live {
                key, offset, limit, ..
            } => Answer::LiveLines(
                history
                    .transcript(key, offset, limit)
                    .map_err(failed)?
                    .into_iter()
                    .map(LiveLine::stored)
                    .collect(),
            ),
            Query::Transcript { key, offset, limit } => {
                Answer::Lines(history.transcript(key, offset, limit).map_err(failed)?)
            }
            Query::Contact(id) => Answer::Contact(history.contact(id).map_err(failed)?),
            Query::ContactOf(key) => Answer::ContactId(history.contact_of(key).map_err(failed)?),
            Query::ContactHistory { key, limit } => {
                match history.contact_of(key).map_err(failed)? {
                    Some(contact) => Answer::Entries(
                        history
                            .search(Some(contact), None, limit.saturating_add(1))
                            .map_err(failed)?
                            .into_iter()
                            .filter(|e| e.key != key)
                            .take(limit)
                            .collect(),
                    ),
                    None => Answer::Entries(Vec::new()),
                }
            }
            Query::ImportCsv(csv) => {
                let (n, skipped) = history.import_csv(&csv).map_err(failed)?;
                Answer::Imported(n, skipped)
            }
            Query::AddAddress(id, address) => {
                Answer::ContactId(Some(history.add_address(id, &address).map_err(failed)?))
            }
            Query::Queues | Query::Attachment { .. } | Query::Presence => {
                unreachable!("answered before the history is needed")
            }
        })
    }

    /// Every channel any agent has, with its waiting interactions.
    fn queues(&self) -> Vec<QueueView> {
        let channels: BTreeSet<String> = self
            .core
            .policy()
            .agents
            .iter()
            .flat_map(|a| a.channels.iter().cloned())
            .collect();
        channels
            .into_iter()
            .map(|channel| {
                let waiting = self.core.queue(&channel);
                let oldest_since = waiting
                    .iter()
                    .filter_map(|k| self.core.interaction(*k).map(|i| i.arrived_at))
                    .min();
                QueueView {
                    channel,
                    waiting: waiting.len(),
                    oldest_since,
                }
            })
            .collect()
    }
}
