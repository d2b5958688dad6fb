// Kite's official Node client (kiteconnect), unchanged, against the aio_trader sandbox.
// Run by tests/test_sandbox_official_node_client.py, which reads the one JSON line this
// prints. Environment: SANDBOX_ROOT, SANDBOX_TICKER, API_KEY, API_SECRET, REQUEST_TOKEN.
'use strict';

const { KiteConnect, KiteTicker } = require('kiteconnect');

const env = process.env;
const results = {};

function order(extra) {
  return {
    exchange: 'NSE',
    tradingsymbol: 'INFY',
    transaction_type: 'BUY',
    quantity: 1,
    product: 'CNC',
    order_type: 'MARKET',
    ...extra,
  };
}

async function rest(kc) {
  const session = await kc.generateSession(env.REQUEST_TOKEN, env.API_SECRET);
  results.session = { user_id: session.user_id, access_token: session.access_token };
  results.profile = (await kc.getProfile()).user_id;
  results.ltp = (await kc.getLTP(['NSE:INFY']))['NSE:INFY'].last_price;
  const quote = (await kc.getQuote(['NSE:INFY']))['NSE:INFY'];
  results.quote = { buy_levels: quote.depth.buy.length, has_ohlc: 'close' in quote.ohlc };
  const instruments = await kc.getInstruments('NSE');
  // the client keeps the row papaparse makes of the dump's final newline (as with Kite's)
  const rows = instruments.filter((row) => row.tradingsymbol);
  const infy = rows.find((row) => row.tradingsymbol === 'INFY');
  results.instruments = { count: rows.length, infy: infy && infy.instrument_token };
  const candles = await kc.getHistoricalData(
    408065, 'day', '2026-11-02 00:00:00', '2026-11-06 00:00:00');
  results.candles = {
    count: candles.length,
    date_is_date: candles.length > 0 && candles[0].date instanceof Date,
  };
  const placed = await kc.placeOrder('regular', order({ market_protection: -1, tag: 'node' }));
  const history = await kc.getOrderHistory(placed.order_id);
  results.order = { order_id: placed.order_id, statuses: history.map((row) => row.status) };
  try {
    await kc.placeOrder('regular', order({}));  // no market protection: refused
    results.refused = null;
  } catch (error) {
    results.refused = { error_type: error.error_type, message: error.message };
  }
}

function ticker(kc, accessToken) {
  return new Promise((resolve, reject) => {
    const t = new KiteTicker({
      api_key: env.API_KEY,
      access_token: accessToken,
      root: env.SANDBOX_TICKER,
      reconnect: false,
    });
    const tokens = [408065, 256265];
    const full = {};
    let update = null;
    const done = () => {
      if (update && full[408065] && full[256265]) {
        t.disconnect();
        resolve({ full, update });
      }
    };
    t.on('connect', () => {
      t.subscribe(tokens);
      t.setMode(t.modeFull, tokens);
      kc.placeOrder('regular', order({ market_protection: -1, tag: 'nodews' })).catch(reject);
    });
    t.on('ticks', (ticks) => {
      for (const tick of ticks) {
        if (tick.mode === 'full') {
          full[tick.instrument_token] = tick;
        }
      }
      done();
    });
    t.on('order_update', (data) => {
      if (data.tag === 'nodews' && !update) {
        update = { order_id: data.order_id, status: data.status, tag: data.tag };
      }
      done();
    });
    t.on('error', (error) => reject(new Error(`ticker error: ${error && error.message}`)));
    t.connect();
  });
}

async function main() {
  const kc = new KiteConnect({ api_key: env.API_KEY, root: env.SANDBOX_ROOT });
  await rest(kc);
  const { full, update } = await ticker(kc, results.session.access_token);
  const stock = full[408065];
  const index = full[256265];
  results.ticker = {
    stock: {
      last_price: stock.last_price,
      buy_levels: stock.depth.buy.length,
      sell_levels: stock.depth.sell.length,
      has_timestamp: stock.exchange_timestamp instanceof Date,
      tradable: stock.tradable,
    },
    index: { last_price: index.last_price, tradable: index.tradable },
    update,
  };
}

main().then(
  () => process.stdout.write(JSON.stringify(results) + '\n', () => process.exit(0)),
  (error) => {
    const text = error instanceof Error ? error.stack : JSON.stringify(error);
    process.stderr.write(`${text}\n`, () => process.exit(1));
  },
);
