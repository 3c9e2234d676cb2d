// pg2-app page: source | target pose (draggable skeleton) | G1 | G2 | difference map.
// Every request is stateless: /api/generate gets the model-size source PNG and the 18 joints
// (and the source's own joints, for its proportions and its background).
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
// Panel size in CSS pixels: 384 high for Market's 128x64, 260 x 260 for DeepFashion's 256x256,
// so that five panels fit beside each other.
const panelSize = (H, W) => {
  const height = Math.min(384, (260 * H) / W);
  return [height, (height * W) / H];
};
// OpenPose's joint colours, COCO-18 order.
const COLORS = [
  "#ff0000", "#ff5500", "#ffaa00", "#ffff00", "#aaff00", "#55ff00", "#00ff00", "#00ff55", "#00ffaa",
  "#00ffff", "#00aaff", "#0055ff", "#0000ff", "#5500ff", "#aa00ff", "#ff00ff", "#ff00aa", "#ff0055",
];

// The page's state; window.pg2 exposes it for reading (tests, the console).
const state = {
  info: null,
  source: null, // model-size source image, PNG data URL
  sourceKeypoints: null, // the source's own pose, [[row, col] x 18], [-1, -1] missing
  keypoints: null, // the target pose being edited
  openpose: null, // OpenPose JSON of the pose of the G2 shown
  sent: 0, // generation requests sent
  shown: 0, // the latest request whose answer is shown
  drag: null, // {joint, pointerId} while a joint is dragged
  choosing: null, // while the page asks which person of a photo: called with the index
};
window.pg2 = state;

const $ = (id) => document.getElementById(id);

function showMessage(text, kind = "error") {
  const box = $("message");
  box.textContent = text || "";
  box.className = kind;
  box.hidden = !text;
}

async function callApi(path, options) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    throw new Error(`the server did not answer (${error.message}): is pg2-app still running?`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  if (!response.ok) {
    throw new Error(body && body.error ? body.error : `the server answered ${response.status} ${response.statusText}`);
  }
  return body;
}

function uploadFile(path, file, person = null) {
  if (person !== null) path += `?person=${person}`;
  return callApi(path, {
    method: "POST",
    body: file,
    headers: { "Content-Type": "application/octet-stream", "X-Filename": encodeURIComponent(file.name) },
  });
}

const isMissing = (joint) => joint[0] === -1 || joint[1] === -1;
const copyPose = (keypoints) => keypoints.map((joint) => joint.slice());

// ---- the skeleton ----

function svgElement(name, attributes) {
  const element = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  return element;
}

function drawSkeleton() {
  const { img_H: H, img_W: W, limbs } = state.info;
  const svg = $("skeleton");
  svg.replaceChildren();
  const width = H / 100; // line and outline widths in model pixels
  for (const [a, b] of limbs) {
    const [p, q] = [state.keypoints[a], state.keypoints[b]];
    if (isMissing(p) || isMissing(q)) continue;
    svg.appendChild(svgElement("line", {
      x1: p[1] + 0.5, y1: p[0] + 0.5, x2: q[1] + 0.5, y2: q[0] + 0.5,
      stroke: COLORS[b], "stroke-width": 1.5 * width, "stroke-opacity": 0.8,
    }));
  }
  state.keypoints.forEach((joint, index) => {
    if (isMissing(joint)) return;
    const circle = svgElement("circle", {
      cx: joint[1] + 0.5, cy: joint[0] + 0.5, r: Math.max(1.6, H / 40),
      fill: COLORS[index], "stroke-width": width / 2,
      "data-joint": index, "data-row": joint[0], "data-col": joint[1],
    });
    const title = svgElement("title", {});
    title.textContent = state.info.joint_names[index];
    circle.appendChild(title);
    if (state.drag && state.drag.joint === index) circle.classList.add("dragging");
    svg.appendChild(circle);
  });
  state.keypoints.forEach((joint, index) => {
    $(`joint-${index}`).checked = !isMissing(joint);
  });
}

function modelPixel(event) {
  const svg = $("skeleton");
  const point = svg.createSVGPoint();
  point.x = event.clientX;
  point.y = event.clientY;
  const inModel = point.matrixTransform(svg.getScreenCTM().inverse());
  const clamp = (value, size) => Math.min(size - 1, Math.max(0, Math.floor(value)));
  return [clamp(inModel.y, state.info.img_H), clamp(inModel.x, state.info.img_W)];
}

function setupDragging() {
  const svg = $("skeleton");
  svg.addEventListener("pointerdown", (event) => {
    const joint = event.target.dataset && event.target.dataset.joint;
    if (joint === undefined) return;
    event.preventDefault();
    state.drag = { joint: Number(joint), pointerId: event.pointerId, moved: false };
    svg.setPointerCapture(event.pointerId);
    event.target.classList.add("dragging"); // no redraw: a double click needs the same element
  });
  svg.addEventListener("pointermove", (event) => {
    if (!state.drag || event.pointerId !== state.drag.pointerId) return;
    const [row, col] = modelPixel(event);
    const joint = state.keypoints[state.drag.joint];
    if (joint[0] === row && joint[1] === col) return;
    state.keypoints[state.drag.joint] = [row, col];
    state.drag.moved = true;
    drawSkeleton();
  });
  const finish = (event) => {
    if (!state.drag || event.pointerId !== state.drag.pointerId) return;
    const moved = state.drag.moved;
    state.drag = null;
    if (moved) {
      drawSkeleton();
      requestGenerate();
    } else {
      for (const circle of svg.querySelectorAll("circle.dragging")) circle.classList.remove("dragging");
    }
  };
  svg.addEventListener("pointerup", finish);
  svg.addEventListener("pointercancel", finish);
  svg.addEventListener("dblclick", (event) => {
    // Pointer capture makes the svg the click's target: look up the joint under the pointer.
    const under = document.elementFromPoint(event.clientX, event.clientY);
    const joint = under && under.dataset && under.dataset.joint;
    if (joint === undefined) return;
    state.keypoints[Number(joint)] = [-1, -1];
    drawSkeleton();
    requestGenerate();
  });
}

function buildJointList() {
  const box = $("joints");
  state.info.joint_names.forEach((name, index) => {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "checkbox";
    input.id = `joint-${index}`;
    input.addEventListener("change", () => {
      if (input.checked) {
        const own = state.sourceKeypoints && state.sourceKeypoints[index];
        state.keypoints[index] = own && !isMissing(own) ? own.slice() : state.info.default_pose[index].slice();
      } else {
        state.keypoints[index] = [-1, -1];
      }
      drawSkeleton();
      requestGenerate();
    });
    const swatch = document.createElement("span");
    swatch.textContent = "\u25cf ";
    swatch.style.color = COLORS[index];
    label.append(input, swatch, name.replace(/_/g, " "));
    box.appendChild(label);
  });
}

// ---- results ----

function enableDownload(id, href) {
  const link = $(id);
  if (link.href && link.href.startsWith("blob:")) URL.revokeObjectURL(link.href);
  link.href = href;
  link.setAttribute("aria-disabled", "false");
}

async function requestGenerate() {
  if (!state.source) return;
  const id = ++state.sent;
  document.body.classList.add("busy");
  try {
    const result = await callApi("/api/generate", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        image: state.source,
        keypoints: state.keypoints,
        source_keypoints: state.sourceKeypoints,
        proportions: $("proportions").value,
        background: $("keep-background").checked ? "source" : "generated",
      }),
    });
    if (id < state.shown) return; // a later change has already been answered
    state.shown = id;
    state.openpose = result.openpose;
    $("g1").src = result.G1;
    $("diff").src = result.diff_map;
    const g2 = $("g2");
    g2.src = result.G2;
    g2.dataset.keypoints = JSON.stringify(result.keypoints);
    g2.dataset.generation = String(id);
    enableDownload("download-g2", result.G2);
    const json = new Blob([JSON.stringify(result.openpose, null, 1)], { type: "application/json" });
    enableDownload("download-pose", URL.createObjectURL(json));
    if ($("message").className === "error") showMessage("");
  } catch (error) {
    showMessage(error.message);
  } finally {
    if (id === state.sent) document.body.classList.remove("busy");
  }
}

// The proportions follow where the pose comes from (another person's photo: the source's own
// bone lengths; the source's own pose or a test record: as given), unless pg2-app
// --proportions chose them; the user may change them at any time.
function proportionsFor(origin) {
  if (state.info.proportions) return;
  $("proportions").value = origin === "another person" ? "source" : "target";
}

// realTarget: the test record's target image (shown beside G2), or null for a photo.
function setSource(image, sourceKeypoints, targetKeypoints, realTarget = null) {
  $("real-target-panel").hidden = !realTarget;
  if (realTarget) $("real-target").src = realTarget;
  state.source = image;
  state.sourceKeypoints = copyPose(sourceKeypoints);
  state.keypoints = copyPose(targetKeypoints);
  $("source").src = image;
  $("pose-backdrop").src = image;
  enableDownload("download-source", image);
  $("reset-pose").disabled = false;
  drawSkeleton();
  requestGenerate();
}

// ---- choosing one of several people in a photo ----

// The server answered {people: [{index, box}], photo, width, height}: outline each person on the
// photo and wait for a click on one; resolves to the chosen index (null when another upload
// replaces the question).
function choosePerson(result, fileName) {
  const chooser = $("chooser");
  const svg = $("chooser-svg");
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${result.width} ${result.height}`);
  $("chooser-photo").src = result.photo;
  $("chooser-text").textContent =
    `${result.people.length} people in ${fileName}: click the one you want (0 is the largest)`;
  const stroke = Math.max(2, result.width / 300);
  return new Promise((resolve) => {
    if (state.choosing) state.choosing(null);
    state.choosing = (index) => {
      state.choosing = null;
      chooser.hidden = true;
      resolve(index);
    };
    for (const person of result.people) {
      const [x0, y0, x1, y1] = person.box;
      const group = svgElement("g", { class: "person", "data-person": person.index });
      group.appendChild(svgElement("rect", {
        x: x0, y: y0, width: x1 - x0, height: y1 - y0, "stroke-width": stroke,
      }));
      const label = svgElement("text", { x: x0 + stroke, y: y0 - stroke, "font-size": 8 * stroke });
      label.textContent = person.index;
      group.appendChild(label);
      group.addEventListener("click", () => state.choosing && state.choosing(person.index));
      svg.appendChild(group);
    }
    chooser.hidden = false;
  });
}

// Uploads a photo; when it holds several people, asks which one and uploads it again with that
// choice. Resolves to the server's answer for one person, or null when the question was replaced.
async function uploadPhoto(path, file) {
  const result = await uploadFile(path, file);
  if (!result.people) return result;
  showMessage("");
  const index = await choosePerson(result, file.name);
  if (index === null) return null;
  showMessage(`reading person ${index} of ${file.name}...`, "notice");
  return uploadFile(path, file, index);
}

// ---- controls ----

function setupControls() {
  $("source-file").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    event.target.value = "";
    if (!file) return;
    showMessage(`reading ${file.name}...`, "notice");
    try {
      const result = await uploadPhoto("/api/source", file);
      if (!result) return;
      showMessage(result.notice || "", "notice");
      proportionsFor("own");
      setSource(result.image, result.keypoints, result.keypoints);
    } catch (error) {
      showMessage(error.message);
    }
  });
  $("pose-file").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    event.target.value = "";
    if (!file) return;
    showMessage(`finding the pose in ${file.name}...`, "notice");
    try {
      const result = await uploadPhoto("/api/pose", file);
      if (!result) return;
      showMessage("");
      proportionsFor("another person");
      state.keypoints = copyPose(result.keypoints);
      drawSkeleton();
      if (!state.source) showMessage("now choose a person photo to put in this pose", "notice");
      requestGenerate();
    } catch (error) {
      showMessage(error.message);
    }
  });
  $("record").addEventListener("change", async (event) => {
    if (event.target.value === "") return;
    try {
      const result = await callApi(`/api/records/${event.target.value}`);
      showMessage("");
      proportionsFor("record");
      setSource(result.source, result.source_keypoints, result.target_keypoints, result.target);
    } catch (error) {
      showMessage(error.message);
    }
  });
  $("reset-pose").addEventListener("click", () => {
    state.keypoints = copyPose(state.sourceKeypoints);
    drawSkeleton();
    requestGenerate();
  });
  $("proportions").addEventListener("change", () => requestGenerate());
  $("keep-background").addEventListener("change", () => requestGenerate());
  $("show-diff").addEventListener("change", (event) => {
    $("diff-panel").hidden = !event.target.checked;
  });
}

async function start() {
  setupControls();
  try {
    state.info = await callApi("/api/info");
  } catch (error) {
    showMessage(error.message);
    return;
  }
  const { img_H: H, img_W: W, dataset, records } = state.info;
  const megabytes = state.info.max_upload_bytes / 2 ** 20;
  const name = dataset === "deepfashion" ? "DeepFashion" : "Market-1501";
  $("model-info").textContent = `${name} model, ${H}x${W} pixels; photos up to ${megabytes} MB`;
  const [height, width] = panelSize(H, W);
  document.documentElement.style.setProperty("--panel-height", `${height}px`);
  const svg = $("skeleton");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  for (const frame of document.querySelectorAll(".frame")) frame.style.width = `${width}px`;
  if (records.length) {
    const select = $("record");
    for (const record of records) {
      const option = document.createElement("option");
      option.value = record.index;
      option.textContent = `${record.index}: ${record.name_0} \u2192 ${record.name_1}`;
      select.appendChild(option);
    }
    $("record-picker").hidden = false;
  }
  if (state.info.proportions) $("proportions").value = state.info.proportions;
  state.keypoints = copyPose(state.info.default_pose);
  buildJointList();
  setupDragging();
  drawSkeleton();
  document.body.dataset.ready = "true";
}

document.addEventListener("DOMContentLoaded", start);
