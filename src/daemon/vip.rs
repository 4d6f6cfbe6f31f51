//! Adds and removes the virtual IP through rtnetlink.
//!
//! Owns the netlink conversation about addresses and links: adding a VIP,
//! removing it, asking whether it is there, and reading the interface facts
//! that announcements need. Adding what is already there and removing what is
//! already gone are successes, so the shell can repeat either safely. Every
//! request is bounded by [`NETLINK_TIMEOUT`]; a request that outlives it is an
//! error like any other. Deciding when to hold the VIP, and announcing it, belong
//! elsewhere.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt, stream};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags};
use nix::errno::Errno;
use rtnetlink::{AddressMessageBuilder, Handle};

use crate::machine::VipTarget;

/// The longest any netlink request may take. The kernel answers in microseconds;
/// one that does not answer in seconds (a wedged rtnl lock, a lost reply) must not
/// stall the effect queue behind it for good: a takeover waits on the add, a
/// release on the removal, and the failure is reported and retried instead.
pub const NETLINK_TIMEOUT: Duration = Duration::from_secs(5);

/// Most requests [`Netlink::add_all`] and [`Netlink::remove_all`] keep on the
/// socket at once. Every answer waits in the socket's receive buffer until the
/// connection task reads it, and a full buffer drops answers (ENOBUFS), which would
/// turn into timeouts; a few hundred small acknowledgements fit in the default
/// buffer, and this many in flight already hide the round trip.
const IN_FLIGHT: usize = 64;

/// Longest label the kernel accepts (IFNAMSIZ less the terminating NUL).
const MAX_LABEL_LEN: usize = 15;

/// What an interface offers to announcements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkInfo {
    pub index: u32,
    pub mac: [u8; 6],
    /// Administratively up and running (IFF_UP and IFF_RUNNING), which also
    /// holds for links without carrier detection, such as dummy links.
    pub up: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    Added,
    /// The interface already had this address and prefix length.
    AlreadyPresent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveOutcome {
    Removed,
    /// The address was not there, or the interface itself is gone.
    Absent,
}

#[derive(Debug, thiserror::Error)]
pub enum VipError {
    /// The netlink socket could not be opened.
    #[error("opening netlink socket: {0}")]
    Connect(#[source] io::Error),
    /// No link has this name.
    #[error("interface {interface} not found")]
    InterfaceNotFound { interface: String },
    /// The link lookup failed for another reason.
    #[error("looking up interface {interface}: {source}")]
    Link {
        interface: String,
        source: io::Error,
    },
    /// The link has no Ethernet address, so nothing can be announced on it.
    #[error("interface {interface} has no ethernet address")]
    NotEthernet { interface: String },
    /// The label cannot go with this address; nothing was changed.
    #[error("label {label:?} for {address} on {interface}: {reason}")]
    InvalidLabel {
        label: String,
        address: IpAddr,
        interface: String,
        reason: &'static str,
    },
    /// The kernel refused the address.
    #[error("adding {address} to {interface}: {source}")]
    Add {
        address: IpAddr,
        interface: String,
        source: io::Error,
    },
    /// The kernel refused to remove the address.
    #[error("removing {address} from {interface}: {source}")]
    Remove {
        address: IpAddr,
        interface: String,
        source: io::Error,
    },
    /// Listing the host's addresses failed.
    #[error("listing the host's addresses: {source}")]
    List { source: io::Error },
    /// The kernel did not answer in time; the request may or may not have taken
    /// effect.
    #[error("{what}: no answer from netlink within {}", crate::duration::format_duration(*.timeout))]
    Timeout { what: String, timeout: Duration },
}

/// A route netlink connection in the current network namespace.
#[derive(Debug, Clone)]
pub struct Netlink {
    handle: Handle,
    /// [`NETLINK_TIMEOUT`], shorter in tests.
    timeout: Duration,
}

/// Opens a netlink socket and spawns its connection task on the current tokio
/// runtime. The task ends when the last clone of the returned value is gone.
///
/// The socket belongs to the network namespace of the calling thread.
pub async fn connect() -> Result<Netlink, VipError> {
    let (connection, handle, _) = rtnetlink::new_connection().map_err(VipError::Connect)?;
    tokio::spawn(connection);
    Ok(Netlink {
        handle,
        timeout: NETLINK_TIMEOUT,
    })
}

impl Netlink {
    /// Adds the VIP. IPv6 addresses skip duplicate address detection so they
    /// are usable at once: during a takeover the old holder may still answer
    /// for a moment, and DAD would then disable the address for good.
    pub async fn add(&self, vip: &VipTarget) -> Result<AddOutcome, VipError> {
        validate_label(vip)?;
        let what = || format!("adding {} to {}", vip.address, vip.interface);
        bounded(self.timeout, what, self.add_unbounded(vip)).await
    }

    async fn add_unbounded(&self, vip: &VipTarget) -> Result<AddOutcome, VipError> {
        let index = self.link_index(&vip.interface).await?;
        self.add_at(index, vip).await
    }

    /// Adds every VIP in `vips`, with up to [`IN_FLIGHT`] requests on the socket at
    /// once, and returns each one's outcome in the same order. Each interface is
    /// looked up once for the lot, and each add is bounded by [`NETLINK_TIMEOUT`]
    /// on its own, exactly as [`Netlink::add`] would be: pipelining saves the round
    /// trips, not the guarantees.
    pub async fn add_all(&self, vips: &[VipTarget]) -> Vec<Result<AddOutcome, VipError>> {
        let indexes = self.link_indexes(vips).await;
        self.add_looked_up(&indexes, vips).await
    }

    /// [`Netlink::add_all`] once the interfaces have been looked up.
    async fn add_looked_up(
        &self,
        indexes: &HashMap<&str, Lookup>,
        vips: &[VipTarget],
    ) -> Vec<Result<AddOutcome, VipError>> {
        // Collected first: a lazy iterator's closure held across the await makes
        // the future's Send bound unprovable.
        let adds: Vec<_> = vips
            .iter()
            .map(|vip| self.add_one(indexes.get(vip.interface.as_str()).copied(), vip))
            .collect();
        stream::iter(adds).buffered(IN_FLIGHT).collect().await
    }

    /// One add of a lot, on the interface as looked up for the lot.
    async fn add_one(
        &self,
        lookup: Option<Lookup>,
        vip: &VipTarget,
    ) -> Result<AddOutcome, VipError> {
        let what = || format!("adding {} to {}", vip.address, vip.interface);
        let Some(index) = self.looked_up(lookup, what)? else {
            return self.add(vip).await;
        };
        validate_label(vip)?;
        bounded(self.timeout, what, self.add_at(index, vip)).await
    }

    async fn add_at(&self, index: u32, vip: &VipTarget) -> Result<AddOutcome, VipError> {
        let mut request = self
            .handle
            .address()
            .add(index, vip.address, vip.prefix_len);
        let message = request.message_mut();
        match (vip.address, &vip.label) {
            (IpAddr::V4(_), Some(label)) => {
                message
                    .attributes
                    .push(AddressAttribute::Label(label.clone()));
            }
            (IpAddr::V4(_), None) => {}
            (IpAddr::V6(_), _) => {
                message.header.flags |= AddressHeaderFlags::Nodad;
                message
                    .attributes
                    .push(AddressAttribute::Flags(AddressFlags::Nodad));
            }
        }
        match request.execute().await.map_err(to_io) {
            Ok(()) => Ok(AddOutcome::Added),
            Err(err) if err.raw_os_error() == Some(Errno::EEXIST as i32) => {
                Ok(AddOutcome::AlreadyPresent)
            }
            Err(source) => Err(VipError::Add {
                address: vip.address,
                interface: vip.interface.clone(),
                source,
            }),
        }
    }

    /// Removes the VIP.
    ///
    /// A missing interface counts as `Absent`: the address cannot be held on
    /// a link that does not exist, and stopping must not fail because of it.
    pub async fn remove(&self, vip: &VipTarget) -> Result<RemoveOutcome, VipError> {
        let what = || format!("removing {} from {}", vip.address, vip.interface);
        bounded(self.timeout, what, self.remove_unbounded(vip)).await
    }

    async fn remove_unbounded(&self, vip: &VipTarget) -> Result<RemoveOutcome, VipError> {
        let index = match self.link_index(&vip.interface).await {
            Ok(index) => index,
            Err(VipError::InterfaceNotFound { .. }) => return Ok(RemoveOutcome::Absent),
            Err(err) => return Err(err),
        };
        self.remove_at(index, vip).await
    }

    /// Removes every VIP in `vips` the way [`Netlink::add_all`] adds them: pipelined,
    /// each interface looked up once, each removal bounded on its own, outcomes in
    /// order.
    pub async fn remove_all(&self, vips: &[VipTarget]) -> Vec<Result<RemoveOutcome, VipError>> {
        let indexes = self.link_indexes(vips).await;
        self.remove_looked_up(&indexes, vips).await
    }

    /// [`Netlink::remove_all`] once the interfaces have been looked up.
    async fn remove_looked_up(
        &self,
        indexes: &HashMap<&str, Lookup>,
        vips: &[VipTarget],
    ) -> Vec<Result<RemoveOutcome, VipError>> {
        let removals: Vec<_> = vips
            .iter()
            .map(|vip| self.remove_one(indexes.get(vip.interface.as_str()).copied(), vip))
            .collect();
        stream::iter(removals).buffered(IN_FLIGHT).collect().await
    }

    /// One removal of a lot, as [`Netlink::add_one`] adds.
    async fn remove_one(
        &self,
        lookup: Option<Lookup>,
        vip: &VipTarget,
    ) -> Result<RemoveOutcome, VipError> {
        let what = || format!("removing {} from {}", vip.address, vip.interface);
        let Some(index) = self.looked_up(lookup, what)? else {
            return self.remove(vip).await;
        };
        bounded(self.timeout, what, self.remove_at(index, vip)).await
    }

    /// What a lot's lookup of the interface means for one request, `what`: the
    /// index to use; None to go the lone way, which looks again and reports what it
    /// finds; or, when the lookup timed out, the timeout a lone request would have
    /// reported after the same wait.
    fn looked_up(
        &self,
        lookup: Option<Lookup>,
        what: impl FnOnce() -> String,
    ) -> Result<Option<u32>, VipError> {
        match lookup {
            Some(Lookup::Index(index)) => Ok(Some(index)),
            Some(Lookup::TimedOut) => Err(VipError::Timeout {
                what: what(),
                timeout: self.timeout,
            }),
            Some(Lookup::Failed) | None => Ok(None),
        }
    }

    async fn remove_at(&self, index: u32, vip: &VipTarget) -> Result<RemoveOutcome, VipError> {
        let message = address_message(index, vip.address, vip.prefix_len);
        match self
            .handle
            .address()
            .del(message)
            .execute()
            .await
            .map_err(to_io)
        {
            Ok(()) => Ok(RemoveOutcome::Removed),
            Err(err) if err.raw_os_error() == Some(Errno::EADDRNOTAVAIL as i32) => {
                Ok(RemoveOutcome::Absent)
            }
            Err(source) => Err(VipError::Remove {
                address: vip.address,
                interface: vip.interface.clone(),
                source,
            }),
        }
    }

    /// The index of `interface`, None if there is no such interface.
    pub async fn index_of(&self, interface: &str) -> Result<Option<u32>, VipError> {
        let what = || format!("looking up interface {interface}");
        match bounded(self.timeout, what, self.link_index(interface)).await {
            Ok(index) => Ok(Some(index)),
            Err(VipError::InterfaceNotFound { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Every address on the host, as (interface index, address, prefix length):
    /// the triple `add` and `remove` act on. One dump answers for any number of
    /// VIPs. A dump per VIP would list every address once per VIP, and dumps cannot
    /// share the socket: the kernel runs one at a time on it and refuses another
    /// begun meanwhile (EBUSY).
    pub async fn addresses(&self) -> Result<HashSet<(u32, IpAddr, u8)>, VipError> {
        let what = || "listing the host's addresses".to_owned();
        bounded(self.timeout, what, self.addresses_unbounded()).await
    }

    async fn addresses_unbounded(&self) -> Result<HashSet<(u32, IpAddr, u8)>, VipError> {
        let list_error = |err| VipError::List { source: to_io(err) };
        let mut listed = HashSet::new();
        // The whole dump is read, so no half-read reply is left in the socket.
        let mut stream = self.handle.address().get().execute();
        while let Some(message) = stream.try_next().await.map_err(list_error)? {
            let (index, prefix_len) = (message.header.index, message.header.prefix_len);
            for attribute in &message.attributes {
                // IFA_LOCAL is an IPv4 address's own, IFA_ADDRESS its peer's on a
                // point-to-point link and otherwise the same; IPv6 has only the
                // latter. A VIP is present under either.
                if let AddressAttribute::Address(address) | AddressAttribute::Local(address) =
                    attribute
                {
                    listed.insert((index, *address, prefix_len));
                }
            }
        }
        Ok(listed)
    }

    /// Index, MAC and state of an Ethernet-like interface.
    pub async fn link_info(&self, interface: &str) -> Result<LinkInfo, VipError> {
        let what = || format!("looking up interface {interface}");
        bounded(self.timeout, what, self.link_info_unbounded(interface)).await
    }

    async fn link_info_unbounded(&self, interface: &str) -> Result<LinkInfo, VipError> {
        let message = self
            .handle
            .link()
            .get()
            .match_name(interface)
            .execute()
            .try_next()
            .await
            .map_err(|err| link_error(interface, err))?
            .ok_or_else(|| VipError::InterfaceNotFound {
                interface: interface.to_owned(),
            })?;
        let mac = message
            .attributes
            .iter()
            .find_map(|attribute| match attribute {
                LinkAttribute::Address(bytes) => <[u8; 6]>::try_from(bytes.as_slice()).ok(),
                _ => None,
            })
            .ok_or_else(|| VipError::NotEthernet {
                interface: interface.to_owned(),
            })?;
        let flags = message.header.flags;
        Ok(LinkInfo {
            index: message.header.index,
            mac,
            up: flags.contains(LinkFlags::Up | LinkFlags::Running),
        })
    }

    /// Each interface `vips` name, looked up once for the lot, failure or not: a
    /// netlink that does not answer costs the lot one timeout per interface, where
    /// a lookup per VIP cost a thousand VIPs a thousand, one after another.
    async fn link_indexes<'a>(&self, vips: &'a [VipTarget]) -> HashMap<&'a str, Lookup> {
        let mut indexes = HashMap::new();
        for vip in vips {
            let interface = vip.interface.as_str();
            if indexes.contains_key(interface) {
                continue;
            }
            let what = || format!("looking up interface {interface}");
            let lookup = match bounded(self.timeout, what, self.link_index(interface)).await {
                Ok(index) => Lookup::Index(index),
                Err(VipError::Timeout { .. }) => Lookup::TimedOut,
                Err(_) => Lookup::Failed,
            };
            indexes.insert(interface, lookup);
        }
        indexes
    }

    async fn link_index(&self, interface: &str) -> Result<u32, VipError> {
        let message = self
            .handle
            .link()
            .get()
            .match_name(interface)
            .execute()
            .try_next()
            .await
            .map_err(|err| link_error(interface, err))?;
        match message {
            Some(message) => Ok(message.header.index),
            None => Err(VipError::InterfaceNotFound {
                interface: interface.to_owned(),
            }),
        }
    }
}

/// What a lot of adds or removals found for one interface.
#[derive(Debug, Clone, Copy)]
enum Lookup {
    Index(u32),
    /// Netlink did not answer: each VIP on the interface fails as a lone request
    /// would, after the same wait, without another.
    TimedOut,
    /// Anything else (no such interface, an error): each VIP goes the lone way,
    /// which looks again and reports it as a lone request would.
    Failed,
}

/// `request`, or a [`VipError::Timeout`] naming `what` once `timeout` has passed.
async fn bounded<T>(
    timeout: Duration,
    what: impl FnOnce() -> String,
    request: impl Future<Output = Result<T, VipError>>,
) -> Result<T, VipError> {
    tokio::time::timeout(timeout, request)
        .await
        .unwrap_or_else(|_| {
            Err(VipError::Timeout {
                what: what(),
                timeout,
            })
        })
}

fn validate_label(vip: &VipTarget) -> Result<(), VipError> {
    let Some(label) = &vip.label else {
        return Ok(());
    };
    let reason = if vip.address.is_ipv6() {
        "labels exist for ipv4 addresses only"
    } else if !label.starts_with(vip.interface.as_str()) {
        "must start with the interface name"
    } else if label.len() > MAX_LABEL_LEN {
        "longer than 15 bytes"
    } else {
        return Ok(());
    };
    Err(VipError::InvalidLabel {
        label: label.clone(),
        address: vip.address,
        interface: vip.interface.clone(),
        reason,
    })
}

fn address_message(index: u32, address: IpAddr, prefix_len: u8) -> AddressMessage {
    match address {
        IpAddr::V4(address) => AddressMessageBuilder::<Ipv4Addr>::new()
            .index(index)
            .address(address, prefix_len)
            .build(),
        IpAddr::V6(address) => AddressMessageBuilder::<Ipv6Addr>::new()
            .index(index)
            .address(address, prefix_len)
            .build(),
    }
}

fn link_error(interface: &str, err: rtnetlink::Error) -> VipError {
    let source = to_io(err);
    if source.raw_os_error() == Some(Errno::ENODEV as i32) {
        VipError::InterfaceNotFound {
            interface: interface.to_owned(),
        }
    } else {
        VipError::Link {
            interface: interface.to_owned(),
            source,
        }
    }
}

/// Kernel refusals become plain errno errors, which read better in one-line
/// messages than rtnetlink's wrapper and can be matched on. The rest are worded
/// here rather than by rtnetlink's `Display`, which prints an unexpected message
/// whole with `Debug`: no one-line message, and it links the formatting of every
/// netlink message type into the executable (see `log` in Cargo.toml).
fn to_io(err: rtnetlink::Error) -> io::Error {
    use rtnetlink::Error as E;
    let text = match err {
        E::NetlinkError(message) => return message.to_io(),
        E::UnexpectedMessage(message) => format!(
            "unexpected netlink message of type {}",
            message.header.message_type
        ),
        // Only a connection task that has ended refuses a request.
        E::RequestFailed => "the netlink connection is closed".to_owned(),
        E::NamespaceError(err) => format!("network namespace: {err}"),
        E::InvalidHardwareAddress(address) => {
            format!("invalid hardware address {address:02x?}")
        }
        E::InvalidIp(bytes) => format!("invalid IP address {bytes:?}"),
        E::InvalidAddress(ip, mask) => format!("invalid address {ip:?}/{mask:?}"),
        E::InvalidNla(nla) => format!("invalid attribute: {nla}"),
    };
    io::Error::other(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(address: &str, interface: &str, label: Option<&str>) -> VipTarget {
        VipTarget {
            address: address.parse().unwrap(),
            prefix_len: 24,
            interface: interface.to_owned(),
            label: label.map(str::to_owned),
        }
    }

    #[test]
    fn netlink_errors_read_as_one_line_with_the_kernels_errno_kept() {
        use netlink_packet_route::RouteNetlinkMessage;
        use netlink_packet_route::link::LinkMessage;
        use rtnetlink::packet_core::{ErrorMessage, NetlinkMessage};

        let mut refusal = ErrorMessage::default();
        refusal.code = std::num::NonZeroI32::new(-(Errno::EEXIST as i32));
        let err = to_io(rtnetlink::Error::NetlinkError(refusal));
        assert_eq!(err.raw_os_error(), Some(Errno::EEXIST as i32));

        let mut message =
            NetlinkMessage::from(RouteNetlinkMessage::NewLink(LinkMessage::default()));
        message.finalize();
        let err = to_io(rtnetlink::Error::UnexpectedMessage(message));
        assert_eq!(err.to_string(), "unexpected netlink message of type 16");
        assert_eq!(
            to_io(rtnetlink::Error::RequestFailed).to_string(),
            "the netlink connection is closed"
        );
    }

    fn reason(vip: &VipTarget) -> Option<&'static str> {
        match validate_label(vip) {
            Ok(()) => None,
            Err(VipError::InvalidLabel { reason, .. }) => Some(reason),
            Err(other) => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn labels_must_start_with_the_interface_and_fit() {
        assert_eq!(reason(&spec("198.18.0.10", "eth0", None)), None);
        assert_eq!(reason(&spec("198.18.0.10", "eth0", Some("eth0:vip"))), None);
        assert_eq!(
            reason(&spec("198.18.0.10", "eth0", Some("vip"))),
            Some("must start with the interface name")
        );
        assert_eq!(
            reason(&spec("198.18.0.10", "eth0", Some("eth0:0123456789a"))),
            Some("longer than 15 bytes")
        );
        assert_eq!(
            reason(&spec("fd00::10", "eth0", Some("eth0:vip"))),
            Some("labels exist for ipv4 addresses only")
        );
    }

    #[test]
    fn a_request_that_never_answers_times_out_with_what_it_was() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let never = std::future::pending::<Result<(), VipError>>();
        let what = || "removing 198.18.0.10 from eth0".to_string();
        let result = runtime.block_on(bounded(Duration::from_millis(20), what, never));
        let err = result.unwrap_err();
        assert!(matches!(err, VipError::Timeout { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "removing 198.18.0.10 from eth0: no answer from netlink within 20ms"
        );
        // An answer in time is passed through.
        let answered = runtime.block_on(bounded(Duration::from_secs(5), what, async { Ok(7) }));
        assert_eq!(answered.unwrap(), 7);
    }

    /// `request`'s answer, which must come within 10 s.
    async fn bound<T>(what: &str, request: impl Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(10), request)
            .await
            .unwrap_or_else(|_| panic!("{what} was not bounded"))
    }

    /// Every request is bounded where it is made, whatever it is: a netlink
    /// connection that takes requests and never answers (its task never runs, as
    /// with a wedged rtnl lock) fails each with a timeout that names it.
    #[test]
    fn every_request_times_out_when_netlink_never_answers() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            // Kept, never polled: requests queue up and no answer ever comes.
            let (_connection, handle, _) = rtnetlink::new_connection().expect("netlink socket");
            let netlink = Netlink {
                handle,
                timeout: Duration::from_millis(50),
            };
            let vips = [
                spec("198.18.0.10", "eth0", None),
                spec("198.18.0.11", "eth1", None),
            ];
            let vip = &vips[0];
            let timed_out = |what: &str, result: Result<(), VipError>| match result {
                Err(VipError::Timeout { what: said, .. }) => said,
                other => panic!("{what}: {other:?}"),
            };
            let said = timed_out("add", bound("add", netlink.add(vip)).await.map(drop));
            assert_eq!(said, "adding 198.18.0.10 to eth0");
            let said = timed_out(
                "remove",
                bound("remove", netlink.remove(vip)).await.map(drop),
            );
            assert_eq!(said, "removing 198.18.0.10 from eth0");
            for result in bound("add_all", netlink.add_all(&vips)).await {
                timed_out("add_all", result.map(drop));
            }
            for result in bound("remove_all", netlink.remove_all(&vips)).await {
                timed_out("remove_all", result.map(drop));
            }
            let addresses = bound("addresses", netlink.addresses()).await;
            timed_out("addresses", addresses.map(drop));
            let info = bound("link_info", netlink.link_info("eth0")).await;
            timed_out("link_info", info.map(drop));
            let index = bound("index_of", netlink.index_of("eth0")).await;
            timed_out("index_of", index.map(drop));
        });
    }

    /// A lot of adds or removals keeps [`IN_FLIGHT`] requests on the socket at once,
    /// and looks each interface up once, answered or not. On a paused clock, which
    /// moves only while every task waits, against a netlink that never answers:
    /// 128 requests on a looked-up interface take two timeouts (64 at a time, where
    /// one at a time would take 128), and a whole lot on an interface whose lookup
    /// timed out takes that one timeout (a lookup per VIP took 128 more).
    #[test]
    fn a_lot_of_requests_is_sent_together_and_waits_once_for_its_interface() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            let (_connection, handle, _) = rtnetlink::new_connection().expect("netlink socket");
            let timeout = Duration::from_millis(50);
            let netlink = Netlink { handle, timeout };
            let vips: Vec<_> = (0..128)
                .map(|i| spec(&format!("198.18.4.{i}"), "eth0", None))
                .collect();
            // 64 at a time: two rounds of timeouts for each of the adds and removals.
            let rounds = 2;
            let looked_up = HashMap::from([("eth0", Lookup::Index(2))]);
            let timed_out = |results: Vec<Result<(), VipError>>, what: &str| {
                assert_eq!(results.len(), vips.len());
                for (result, vip) in results.into_iter().zip(&vips) {
                    let Err(VipError::Timeout { what: said, .. }) = result else {
                        panic!("{what}: {result:?}");
                    };
                    assert!(said.contains(&format!(" {} ", vip.address)), "{said}");
                }
            };
            let start = tokio::time::Instant::now();
            let added = netlink.add_looked_up(&looked_up, &vips).await;
            timed_out(added.into_iter().map(|r| r.map(drop)).collect(), "add");
            let removed = netlink.remove_looked_up(&looked_up, &vips).await;
            timed_out(removed.into_iter().map(|r| r.map(drop)).collect(), "remove");
            assert_eq!(
                start.elapsed(),
                timeout * rounds * 2,
                "not 64 requests at once"
            );

            let start = tokio::time::Instant::now();
            let added = netlink.add_all(&vips).await;
            timed_out(added.into_iter().map(|r| r.map(drop)).collect(), "add_all");
            let removed = netlink.remove_all(&vips).await;
            timed_out(
                removed.into_iter().map(|r| r.map(drop)).collect(),
                "remove_all",
            );
            assert_eq!(
                start.elapsed(),
                timeout * 2,
                "the interface looked up more than once a lot"
            );
        });
    }

    #[test]
    fn invalid_label_message_names_label_address_and_interface() {
        let err = validate_label(&spec("198.18.0.10", "eth0", Some("vip"))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "label \"vip\" for 198.18.0.10 on eth0: must start with the interface name"
        );
    }
}
