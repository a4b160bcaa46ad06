// The backend service of the flash-sale platform: what the gateway calls over kitex.
//
// Errors: a refused call returns a kitex business status error whose code is one of
// the ErrorCode values below and whose message is for humans (see backend/domain).
// Times are unix milliseconds; money is integer cents; order ids are decimal strings.
//
// Authentication: every call carries a credential in its TTHeader metadata, the
// service credential or, on operators' calls, the operator credential
// (backend/rpcauth); a call without the one it needs is refused UNAUTHENTICATED
// before any handler runs. Calls on a shopper's orders and tickets name the shopper:
// user_id must be positive, and only the owner's order or ticket is found.
namespace go rpc

enum ErrorCode {
    BAD_REQUEST = 1001
    NOT_FOUND = 1002
    SOLD_OUT = 1003
    LIMIT_EXCEEDED = 1004
    NOT_STARTED = 1005
    ENDED = 1006
    UNAVAILABLE = 1007
    CONFLICT = 1008
    FORBIDDEN = 1009
    INTERNAL = 1010
    // Units are left, fewer than the order asks for.
    INSUFFICIENT_STOCK = 1011
    // The change may or may not have been made (a store did not say); a retry with the
    // same idempotency key learns which.
    OUTCOME_UNKNOWN = 1012
    // The call carries no service credential, or a wrong one (backend.rpc_secret), or
    // a shopper's credential on an operator's call (backend.rpc_operator_secret).
    UNAUTHENTICATED = 1013
}

struct Item {
    1: i64 id
    2: i64 activity_id
    3: string name
    4: i64 price_cents
    5: i64 total_stock
    // Approximate units left (Redis pre-deduction view); -1 when unknown.
    6: i64 remaining
    // online | offline: an offline item sells nothing while its activity is published.
    7: string state
    // The item's own window, inside the activity's; 0: the activity's start or end.
    8: i64 start_ms
    9: i64 end_ms
}

struct Activity {
    1: i64 id
    2: string name
    3: i64 start_ms
    4: i64 end_ms
    // draft | published | offline
    5: string state
    // sync | async | bucket
    6: string strategy
    7: i32 per_user_limit
    8: i32 bucket_count
    9: list<Item> items
    10: i64 version
    // The waiting room (docs/WAITING_ROOM.md): on or off, and k, the orders in flight
    // the gateways forward per unit left. Numbered apart from the fields above so
    // other additions do not collide.
    40: bool waiting_room
    41: double admission_factor
}

struct ItemSpec {
    1: string name
    2: i64 price_cents
    3: i64 stock
    // online ("" too) | offline
    4: string state
    // The item's own window; 0: the activity's start or end.
    5: i64 start_ms
    6: i64 end_ms
}

struct CreateActivityReq {
    1: string name
    2: i64 start_ms
    3: i64 end_ms
    4: string strategy
    5: i32 per_user_limit
    6: i32 bucket_count
    7: list<ItemSpec> items
    // Unset: off, k 1.5.
    40: optional bool waiting_room
    41: optional double admission_factor
}

// Changes to an activity; unset fields keep their value.
struct ItemChange {
    1: i64 item_id
    2: optional string name
    3: optional i64 price_cents
    // New total stock; the difference is added to (or taken from) what is available.
    4: optional i64 total_stock
    // online | offline
    5: optional string state
    // A window of the item's own; 0 drops it (the activity's again).
    6: optional i64 start_ms
    7: optional i64 end_ms
}

struct AddItemReq {
    1: i64 activity_id
    2: ItemSpec item
}

struct ItemStateReq {
    1: i64 activity_id
    2: i64 item_id
    // online | offline
    3: string state
}

struct UpdateActivityReq {
    1: i64 id
    2: optional string name
    3: optional i64 start_ms
    4: optional i64 end_ms
    5: optional string strategy
    6: optional i32 per_user_limit
    7: optional i32 bucket_count
    8: list<ItemChange> items
    40: optional bool waiting_room
    41: optional double admission_factor
}

struct IDReq {
    1: i64 id
}

// Lists come a page at a time, keyed on the id: a page starts past the cursor, and an
// answer's next is the cursor of the page after it (0: none). A limit of 0 is the
// list's default; one past its bound is refused.
struct ListActivitiesReq {
    // Only published activities when false.
    1: bool include_all
    // The cursor: activities with lower ids (newest first); 0 from the newest.
    2: i64 before
    3: i32 limit
    // Only activities in this state; "" any (published only without include_all).
    4: string state
}

struct ListActivitiesResp {
    1: list<Activity> activities
    2: i64 next
}

struct PlaceOrderReq {
    1: i64 user_id
    2: i64 activity_id
    3: i64 item_id
    4: i32 quantity
    5: string idempotency_key
    6: map<string, string> trace
}

struct PlaceOrderResp {
    // created (sync) or pending (async, bucket)
    1: string status
    2: string order_id
    3: string ticket
    // True when this answer replays an earlier request with the same idempotency key.
    4: bool replayed
}

struct TicketReq {
    1: i64 user_id
    2: string ticket
    // > 0: answer once the ticket ends or after this many milliseconds (at most
    // 10,000), whichever is first; a backend that does not know it answers at once.
    3: i64 wait_ms
}

struct TicketResp {
    // pending | created | failed
    1: string status
    2: string order_id
    3: string reason
}

struct Order {
    1: string id
    2: i64 user_id
    3: i64 activity_id
    4: i64 item_id
    5: i32 quantity
    6: i64 amount_cents
    // created (unpaid) | paid | cancelled | expired | deleted
    7: string status
    8: i64 created_ms
    9: string ticket
}

struct OrderReq {
    1: i64 user_id
    2: string order_id
}

// A shopper's orders, newest first; deleted ones are never listed.
struct ListOrdersReq {
    1: i64 user_id
    // The cursor: orders with lower ids; 0 from the newest.
    2: i64 after
    3: i32 limit
    // Only these states (created, paid, cancelled, expired); empty: all four.
    4: list<string> statuses
    // Only this activity's; 0: any.
    5: i64 activity_id
}

struct ListOrdersResp {
    1: list<Order> orders
    2: i64 next
}

// An activity's orders for its operators, deleted ones included.
struct ActivityOrdersReq {
    1: i64 activity_id
    // Only this item's; 0: every item's.
    2: i64 item_id
    // Only these states; empty: every one.
    3: list<string> statuses
    // The cursor: orders past this id in the list's order; 0 from the first.
    4: i64 after
    5: i32 limit
    // Ascending ids (oldest first) instead of newest first.
    6: bool oldest_first
}

struct ItemStats {
    1: i64 item_id
    2: i64 total_stock
    3: i64 redis_stock
    4: i64 mysql_stock
    5: i64 in_flight
    6: i64 orders
    7: i64 units_sold
    8: i64 pending_tickets
    9: bool redis_loaded
}

struct ActivityStats {
    1: i64 activity_id
    2: list<ItemStats> items
    3: i64 pending_tickets
    // Refusals of the backends by reason (sold_out, limit_exceeded, ...), the fleet's
    // sums.
    4: map<string, i64> shed
    // What the gateways shed, by "layer/reason", the fleet's sums.
    5: map<string, i64> gateway_shed
}

// The fleet's control state: admission plugins and rate limits, stored by the
// backends and announced to every gateway.
struct PluginSpec {
    1: string name
    // Counts the plugin's changes; a removed and re-added name goes on counting.
    2: i64 version
    3: string sha256
    4: i32 order
    // JSON handed to the guest; "" for none.
    5: string config
    // open | closed
    6: string fail_policy
    7: i64 timeout_ms
    8: i32 memory_limit_pages
    9: i32 pool_size
    10: i32 size_bytes
    11: string updated_by
    12: i64 updated_ms
}

struct PluginChain {
    // Counts every change of the chain.
    1: i64 version
    2: list<PluginSpec> plugins
}

struct PutPluginReq {
    1: PluginSpec spec
    // The module; empty keeps the stored one (a change of order, config or limits).
    2: binary module
}

struct PluginNameReq {
    1: string name
    2: string who
}

struct PluginModuleReq {
    1: string sha256
}

struct PluginModuleResp {
    1: binary module
}

struct PluginChange {
    1: i64 id
    // put | delete | rollback
    2: string action
    3: PluginSpec spec
}

struct PluginHistoryResp {
    1: list<PluginChange> changes
}

struct LimitsState {
    1: i64 version
    // The limits as JSON; "" when none were ever stored.
    2: string body
    3: string updated_by
    4: i64 updated_ms
}

struct PutLimitsReq {
    1: string body
    2: string who
    // When set, the limits are stored only if their stored version is this one (0:
    // none stored yet); otherwise the call fails with conflict, and the caller
    // reads them again: two changes made at once never lose one another.
    3: optional i64 if_version
}

struct EmptyReq {
}

struct PingReq {
    1: binary payload
}

struct PingResp {
    1: binary payload
}

service Seckill {
    // Shoppers
    PlaceOrderResp PlaceOrder(1: PlaceOrderReq req)
    TicketResp GetTicket(1: TicketReq req)
    ListActivitiesResp ListActivities(1: ListActivitiesReq req)
    Activity GetActivity(1: IDReq req)
    Item GetItem(1: IDReq req)
    ListOrdersResp ListOrders(1: ListOrdersReq req)
    Order GetOrder(1: OrderReq req)
    Order CancelOrder(1: OrderReq req)
    // Marks an order paid (payment itself is out of scope) so the unpaid timeout keeps it.
    Order PayOrder(1: OrderReq req)
    // Deletes a cancelled or expired order: gone from the shopper's list, kept for operators.
    Order DeleteOrder(1: OrderReq req)

    // Operators
    Activity CreateActivity(1: CreateActivityReq req)
    Activity UpdateActivity(1: UpdateActivityReq req)
    Activity AdminGetActivity(1: IDReq req)
    Activity PublishActivity(1: IDReq req)
    Activity OfflineActivity(1: IDReq req)
    ActivityStats GetActivityStats(1: IDReq req)
    // Adds an item with its stock to an activity in any state.
    Activity AddItem(1: AddItemReq req)
    // Takes an item offline or back online; the activity's state stays.
    Activity SetItemState(1: ItemStateReq req)
    ListOrdersResp ListActivityOrders(1: ActivityOrdersReq req)

    // The fleet's control state (gateways call these; changes are announced).
    PluginChain GetPlugins(1: EmptyReq req)
    PluginSpec PutPlugin(1: PutPluginReq req)
    PluginChain DeletePlugin(1: PluginNameReq req)
    PluginSpec RollbackPlugin(1: PluginNameReq req)
    PluginHistoryResp GetPluginHistory(1: PluginNameReq req)
    PluginModuleResp GetPluginModule(1: PluginModuleReq req)
    LimitsState GetLimits(1: EmptyReq req)
    LimitsState PutLimits(1: PutLimitsReq req)

    // Baseline for the bench: a round trip that does nothing.
    PingResp Ping(1: PingReq req)
}
