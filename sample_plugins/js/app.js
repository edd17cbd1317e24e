// vrpoker in JavaScript: the events of the VRPoker world's log lines, as vrpoker.wasm gives them.

const TAG = "[VRPoker] ";
const GAME = /\[VRPoker\] Game started with (\d+) players/;
const WINNER = /\[VRPoker\] Player (.+?) wins with (.+?)\s*$/;
const ROUND = /\[VRPoker\] Round (\d+) begins/;
const STAMP = /^(\d{4})\.(\d{2})\.(\d{2}) (\d{2}:\d{2}:\d{2})/;

// VRChat's local time from the line's prefix; the host adds the local offset.
function timestamp(line) {
  const m = STAMP.exec(line);
  return m ? `${m[1]}-${m[2]}-${m[3]}T${m[4]}` : undefined;
}

function event(kind, line, data) {
  return { kind, timestamp: timestamp(line), data: Object.entries(data) };
}

export function parseLine(line) {
  const at = line.indexOf(TAG);
  if (at < 0) return [];
  let m;
  if ((m = GAME.exec(line))) return [event("vrpoker_game_start", line, { player_count: m[1] })];
  if ((m = WINNER.exec(line))) return [event("vrpoker_winner", line, { player: m[1], hand: m[2] })];
  if ((m = ROUND.exec(line))) return [event("vrpoker_round", line, { round: m[1] })];
  return [event("vrpoker_event", line, { message: line.slice(at + TAG.length).replace(/[ \r]+$/, "") })];
}
